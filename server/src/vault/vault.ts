import {
  createCipheriv,
  createDecipheriv,
  createHmac,
  createSecretKey,
  hkdfSync,
  randomBytes,
  randomInt,
  timingSafeEqual,
} from 'node:crypto';
import { chmodSync, existsSync, mkdirSync } from 'node:fs';
import path from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import { AppError } from '../errors.ts';
import { VaultKeyError } from './vault-key.ts';

/**
 * The vault: the only place where real identifiers live. Each identifier is kept encrypted
 * (AES-256-GCM), found through a keyed blind index (HMAC-SHA256) so that the plain value is
 * never stored, and mapped to a random pseudonym that says nothing about it.
 *
 * A vault is one SQLite file in its own directory, apart from the catalog and the lake. At
 * scale it moves to its own host; nothing on the query path opens it.
 */

/** Who a pseudonym belongs to: an id space (a hospital, or a shared space) and a kind. */
export type IdentityScope = { space: string; kind: string };

export type PseudonymEntry = {
  pseudonym: string;
  /** The patient's date shift in days, stable across uploads; never leaves the ingest path. */
  shiftDays: number;
};

export type Reidentification = IdentityScope & { realId: string; createdAt: string };

export type Vault = {
  /**
   * A secret derived from the vault key for linkage columns (an encounter id), which become a
   * keyed hash: the same value gives the same pseudonym, and nobody without the key can tell
   * which value it was.
   */
  readonly linkageKey: string;
  /** The pseudonym of every id, creating those not seen before in this scope. */
  pseudonymize(scope: IdentityScope, realIds: readonly string[]): Map<string, PseudonymEntry>;
  /** Maps a pseudonym back and records who asked and why. */
  reidentify(
    pseudonym: string,
    request: { custodian: string; reason: string; source?: string },
  ): Reidentification;
  /**
   * The patient pseudonym for which `matches` holds, found by trying every one: how a holder's
   * own pseudonym (a keyed hash of it) is traced back.
   */
  findPatientPseudonym(matches: (pseudonym: string) => boolean): string | undefined;
  /** Writes a consistent copy of the vault's database (still sealed) to a new file. */
  copyTo(file: string): void;
  close(): void;
};

const fileName = 'vault.sqlite';
const maxShiftDays = 182;

export function vaultExists(directory: string): boolean {
  return existsSync(path.join(directory, fileName));
}

export function openVault(directory: string, masterKey: Buffer): Vault {
  mkdirSync(directory, { recursive: true, mode: 0o700 });
  const file = path.join(directory, fileName);
  const db = new DatabaseSync(file);
  // Sealed ids aside, the file holds every pseudonym with its date shift in the clear, which
  // undoes the shift of its dates in the lake: its owner's alone, and so the WAL and shared
  // memory files (SQLite makes new ones with the database's mode; older ones are set here).
  for (const own of [file, `${file}-wal`, `${file}-shm`]) {
    if (existsSync(own)) chmodSync(own, 0o600);
  }
  db.exec(`
    PRAGMA journal_mode = WAL;
    PRAGMA busy_timeout = 10000;
    -- A month brings hundreds of thousands of new ids; random-key index inserts need the cache.
    PRAGMA cache_size = -65536;
    CREATE TABLE IF NOT EXISTS vault_meta (key TEXT PRIMARY KEY, value BLOB NOT NULL);
    CREATE TABLE IF NOT EXISTS sealed_batches (
      id INTEGER PRIMARY KEY,
      sealed BLOB NOT NULL,
      created_at TEXT NOT NULL
    );
    CREATE TABLE IF NOT EXISTS identities (
      pseudonym TEXT PRIMARY KEY,
      space TEXT NOT NULL,
      kind TEXT NOT NULL,
      blind_index BLOB NOT NULL,
      batch_id INTEGER NOT NULL REFERENCES sealed_batches (id),
      batch_position INTEGER NOT NULL,
      shift_days INTEGER NOT NULL,
      created_at TEXT NOT NULL,
      UNIQUE (space, kind, blind_index)
    );
    CREATE TABLE IF NOT EXISTS reidentifications (
      at TEXT NOT NULL,
      pseudonym TEXT NOT NULL,
      custodian TEXT NOT NULL,
      reason TEXT NOT NULL
    );
  `);
  addSourceColumn(db);

  const indexKey = Buffer.from(hkdfSync('sha256', masterKey, '', 'medlake vault blind index', 32));
  const sealKey = Buffer.from(hkdfSync('sha256', masterKey, '', 'medlake vault seal', 32));
  try {
    checkKey(db, indexKey);
  } catch (error) {
    db.close();
    throw error;
  }

  const indexKeyObject = createSecretKey(indexKey);
  const blindIndex = (scope: IdentityScope, realId: string) =>
    createHmac('sha256', indexKeyObject)
      .update(`${scope.space}\0${scope.kind}\0${realId}`)
      .digest('hex');

  // Whole batches go through SQLite as one JSON parameter each: one statement for hundreds of
  // thousands of ids instead of one per id.
  const findMany = db.prepare(`
    SELECT CAST(j.key AS INTEGER) AS position, i.pseudonym, i.shift_days
    FROM json_each(?) j CROSS JOIN identities i
      ON i.space = ? AND i.kind = ? AND i.blind_index = unhex(j.value)`);
  const insertBatch = db.prepare('INSERT INTO sealed_batches (sealed, created_at) VALUES (?, ?)');
  const insertMany = db.prepare(`
    INSERT INTO identities (pseudonym, space, kind, blind_index, batch_id, batch_position, shift_days, created_at)
    SELECT j.value ->> '$.p', ?, ?, unhex(j.value ->> '$.i'), ?, j.value ->> '$.n', j.value ->> '$.s', ?
    FROM json_each(?) j`);
  const byPseudonym = db.prepare(`
    SELECT i.space, i.kind, i.batch_id, i.batch_position, i.created_at, b.sealed
    FROM identities i JOIN sealed_batches b ON b.id = i.batch_id
    WHERE i.pseudonym = ?`);
  const patientPseudonyms = db.prepare("SELECT pseudonym FROM identities WHERE kind = 'patient'");
  const logReidentification = db.prepare(
    'INSERT INTO reidentifications (at, pseudonym, custodian, reason, source) VALUES (?, ?, ?, ?, ?)',
  );

  return {
    linkageKey: Buffer.from(hkdfSync('sha256', masterKey, '', 'medlake linkage', 32)).toString(
      'hex',
    ),

    pseudonymize(scope, realIds) {
      const unique = [...new Set(realIds)];
      const indexes = unique.map((realId) => blindIndex(scope, realId));
      const result = new Map<string, PseudonymEntry>();
      db.exec('BEGIN IMMEDIATE');
      try {
        const found = findMany.all(JSON.stringify(indexes), scope.space, scope.kind) as Array<{
          position: number;
          pseudonym: string;
          shift_days: number;
        }>;
        const known = new Set<number>();
        for (const row of found) {
          known.add(row.position);
          result.set(unique[row.position] ?? '', {
            pseudonym: row.pseudonym,
            shiftDays: row.shift_days,
          });
        }
        const fresh = unique.flatMap((realId, position) =>
          known.has(position) ? [] : [{ realId, position }],
        );
        if (fresh.length > 0) {
          const now = new Date().toISOString();
          const batch = insertBatch.run(
            sealBatch(
              sealKey,
              fresh.map((entry) => entry.realId),
              `${scope.space}\0${scope.kind}`,
            ),
            now,
          ).lastInsertRowid;
          const random = randomBytes(pseudonymBytes * fresh.length);
          const rows = fresh.map(({ realId, position }, n) => {
            const bits = random.subarray(n * pseudonymBytes, (n + 1) * pseudonymBytes);
            const entry = {
              pseudonym: newPseudonym(scope.kind, bits),
              shiftDays: randomShiftDays(),
            };
            result.set(realId, entry);
            // n: the id's place in the sealed batch, which re-identification decrypts.
            return { p: entry.pseudonym, i: indexes[position] ?? '', n, s: entry.shiftDays };
          });
          // In the order of the blind index, so that the inserts walk its B-tree in one pass
          // rather than jumping about it: a month brings hundreds of thousands of new ids.
          rows.sort((a, b) => (a.i < b.i ? -1 : a.i > b.i ? 1 : 0));
          insertMany.run(scope.space, scope.kind, batch, now, JSON.stringify(rows));
        }
        db.exec('COMMIT');
      } catch (error) {
        db.exec('ROLLBACK');
        throw error;
      }
      return result;
    },

    copyTo(file) {
      // VACUUM INTO writes a transaction-consistent copy, whatever the WAL holds.
      db.prepare('VACUUM INTO ?').run(file);
      chmodSync(file, 0o600);
    },

    findPatientPseudonym(matches) {
      for (const row of patientPseudonyms.iterate()) {
        const { pseudonym } = row as { pseudonym: string };
        if (matches(pseudonym)) return pseudonym;
      }
      return undefined;
    },

    reidentify(pseudonym, request) {
      const row = byPseudonym.get(pseudonym) as
        | {
            space: string;
            kind: string;
            batch_position: number;
            created_at: string;
            sealed: Uint8Array;
          }
        | undefined;
      logReidentification.run(
        new Date().toISOString(),
        pseudonym,
        request.custodian,
        request.reason,
        request.source ?? null,
      );
      if (!row)
        throw new AppError(
          'pseudonym_not_found',
          `No identity in the vault has pseudonym ${pseudonym}`,
        );
      const ids = unsealBatch(sealKey, Buffer.from(row.sealed), `${row.space}\0${row.kind}`);
      const realId = ids[row.batch_position];
      if (realId === undefined) throw new Error('the vault batch does not hold this identity');
      return { space: row.space, kind: row.kind, realId, createdAt: row.created_at };
    },

    close() {
      db.close();
    },
  };
}

/**
 * Where each re-identification came from (the vault service's client and the server's host and
 * user): vaults made before it was recorded gain the column, empty for their older rows.
 */
function addSourceColumn(db: DatabaseSync): void {
  const columns = db.prepare('PRAGMA table_info(reidentifications)').all() as Array<{
    name: string;
  }>;
  if (!columns.some((column) => column.name === 'source')) {
    db.exec('ALTER TABLE reidentifications ADD COLUMN source TEXT');
  }
}

/** Stores a check value on first use; on later opens, a different key is refused. */
function checkKey(db: DatabaseSync, indexKey: Buffer): void {
  const expected = createHmac('sha256', indexKey).update('medlake vault key check').digest();
  const stored = db.prepare("SELECT value FROM vault_meta WHERE key = 'key_check'").get() as
    { value: Uint8Array } | undefined;
  if (!stored) {
    const identities = db.prepare('SELECT count(*) AS n FROM identities').get() as { n: number };
    if (identities.n > 0) throw new VaultKeyError('The vault has identities but no key check');
    db.prepare("INSERT INTO vault_meta (key, value) VALUES ('key_check', ?)").run(expected);
    return;
  }
  const storedCheck = Buffer.from(stored.value);
  if (storedCheck.length !== expected.length || !timingSafeEqual(storedCheck, expected)) {
    throw new VaultKeyError(
      'The vault key does not match the key this vault was created with. ' +
        'Configure the original MEDLAKE_VAULT_KEY; a new key cannot read the existing mapping.',
    );
  }
}

/** 80 random bits: collisions stay improbable up to billions of patients. */
const pseudonymBytes = 10;

function newPseudonym(kind: string, random: Buffer): string {
  // A prefix tells a patient pseudonym from one of another kind.
  const prefix = kind === 'patient' ? 'p' : kind.slice(0, 3);
  return `${prefix}_${random.toString('hex')}`;
}

function randomShiftDays(): number {
  // Never zero, so that a shifted date never equals the real one by construction.
  const magnitude = randomInt(1, maxShiftDays + 1);
  return randomInt(2) === 0 ? -magnitude : magnitude;
}

/**
 * Encrypts the real ids of one batch of new identities together: one AES-256-GCM message,
 * bound to its id space and kind. An identity row points at its batch and position; only the
 * custodian's re-identification ever decrypts a batch.
 */
function sealBatch(key: Buffer, realIds: string[], scope: string): Buffer {
  const iv = randomBytes(12);
  const cipher = createCipheriv('aes-256-gcm', key, iv);
  cipher.setAAD(Buffer.from(scope));
  const body = Buffer.concat([cipher.update(JSON.stringify(realIds), 'utf8'), cipher.final()]);
  return Buffer.concat([iv, cipher.getAuthTag(), body]);
}

function unsealBatch(key: Buffer, sealed: Buffer, scope: string): string[] {
  const decipher = createDecipheriv('aes-256-gcm', key, sealed.subarray(0, 12));
  decipher.setAAD(Buffer.from(scope));
  decipher.setAuthTag(sealed.subarray(12, 28));
  const plain = Buffer.concat([decipher.update(sealed.subarray(28)), decipher.final()]);
  return JSON.parse(plain.toString('utf8')) as string[];
}
