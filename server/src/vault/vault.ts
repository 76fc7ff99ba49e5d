import {
  createCipheriv,
  createDecipheriv,
  createHmac,
  hkdfSync,
  randomBytes,
  randomInt,
  timingSafeEqual,
} from 'node:crypto';
import { existsSync, mkdirSync } from 'node:fs';
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
  reidentify(pseudonym: string, request: { custodian: string; reason: string }): Reidentification;
  close(): void;
};

const fileName = 'vault.sqlite';
const maxShiftDays = 182;

export function vaultExists(directory: string): boolean {
  return existsSync(path.join(directory, fileName));
}

export function openVault(directory: string, masterKey: Buffer): Vault {
  mkdirSync(directory, { recursive: true, mode: 0o700 });
  const db = new DatabaseSync(path.join(directory, fileName));
  db.exec(`
    PRAGMA journal_mode = WAL;
    PRAGMA busy_timeout = 10000;
    CREATE TABLE IF NOT EXISTS vault_meta (key TEXT PRIMARY KEY, value BLOB NOT NULL);
    CREATE TABLE IF NOT EXISTS identities (
      pseudonym TEXT PRIMARY KEY,
      space TEXT NOT NULL,
      kind TEXT NOT NULL,
      blind_index BLOB NOT NULL,
      sealed BLOB NOT NULL,
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

  const indexKey = Buffer.from(hkdfSync('sha256', masterKey, '', 'medlake vault blind index', 32));
  const sealKey = Buffer.from(hkdfSync('sha256', masterKey, '', 'medlake vault seal', 32));
  try {
    checkKey(db, indexKey);
  } catch (error) {
    db.close();
    throw error;
  }

  const blindIndex = (scope: IdentityScope, realId: string) =>
    createHmac('sha256', indexKey).update(`${scope.space}\0${scope.kind}\0${realId}`).digest();

  const find = db.prepare(
    'SELECT pseudonym, shift_days FROM identities WHERE space = ? AND kind = ? AND blind_index = ?',
  );
  const insert = db.prepare(
    'INSERT INTO identities (pseudonym, space, kind, blind_index, sealed, shift_days, created_at) VALUES (?, ?, ?, ?, ?, ?, ?)',
  );
  const byPseudonym = db.prepare(
    'SELECT space, kind, sealed, created_at FROM identities WHERE pseudonym = ?',
  );
  const logReidentification = db.prepare(
    'INSERT INTO reidentifications (at, pseudonym, custodian, reason) VALUES (?, ?, ?, ?)',
  );

  return {
    linkageKey: Buffer.from(hkdfSync('sha256', masterKey, '', 'medlake linkage', 32)).toString(
      'hex',
    ),

    pseudonymize(scope, realIds) {
      const result = new Map<string, PseudonymEntry>();
      const now = new Date().toISOString();
      db.exec('BEGIN IMMEDIATE');
      try {
        for (const realId of realIds) {
          if (result.has(realId)) continue;
          const index = blindIndex(scope, realId);
          const found = find.get(scope.space, scope.kind, index) as
            { pseudonym: string; shift_days: number } | undefined;
          if (found) {
            result.set(realId, { pseudonym: found.pseudonym, shiftDays: found.shift_days });
            continue;
          }
          const pseudonym = newPseudonym(scope.kind);
          const shiftDays = randomShiftDays();
          insert.run(
            pseudonym,
            scope.space,
            scope.kind,
            index,
            seal(sealKey, realId, pseudonym),
            shiftDays,
            now,
          );
          result.set(realId, { pseudonym, shiftDays });
        }
        db.exec('COMMIT');
      } catch (error) {
        db.exec('ROLLBACK');
        throw error;
      }
      return result;
    },

    reidentify(pseudonym, request) {
      const row = byPseudonym.get(pseudonym) as
        { space: string; kind: string; sealed: Uint8Array; created_at: string } | undefined;
      logReidentification.run(
        new Date().toISOString(),
        pseudonym,
        request.custodian,
        request.reason,
      );
      if (!row)
        throw new AppError('NOT_FOUND', `No identity in the vault has pseudonym ${pseudonym}`);
      return {
        space: row.space,
        kind: row.kind,
        realId: unseal(sealKey, Buffer.from(row.sealed), pseudonym),
        createdAt: row.created_at,
      };
    },

    close() {
      db.close();
    },
  };
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

function newPseudonym(kind: string): string {
  // A prefix tells a patient pseudonym from an encounter one; the rest is 80 random bits.
  const prefix = kind === 'patient' ? 'p' : kind.slice(0, 3);
  return `${prefix}_${randomBytes(10).toString('hex')}`;
}

function randomShiftDays(): number {
  // Never zero, so that a shifted date never equals the real one by construction.
  const magnitude = randomInt(1, maxShiftDays + 1);
  return randomInt(2) === 0 ? -magnitude : magnitude;
}

function seal(key: Buffer, plaintext: string, pseudonym: string): Buffer {
  const iv = randomBytes(12);
  const cipher = createCipheriv('aes-256-gcm', key, iv);
  // Binding the pseudonym as associated data stops a sealed id being moved to another row.
  cipher.setAAD(Buffer.from(pseudonym));
  const body = Buffer.concat([cipher.update(plaintext, 'utf8'), cipher.final()]);
  return Buffer.concat([iv, cipher.getAuthTag(), body]);
}

function unseal(key: Buffer, sealed: Buffer, pseudonym: string): string {
  const decipher = createDecipheriv('aes-256-gcm', key, sealed.subarray(0, 12));
  decipher.setAAD(Buffer.from(pseudonym));
  decipher.setAuthTag(sealed.subarray(12, 28));
  return Buffer.concat([decipher.update(sealed.subarray(28)), decipher.final()]).toString('utf8');
}
