import { createHmac, timingSafeEqual } from 'node:crypto';
import { canonicalJson } from '@medlake/shared';
import { sql, type Selectable } from 'kysely';
import type { CatalogDb } from '../catalog/catalog.ts';
import { escapeLike } from '../catalog/escape-like.ts';
import type { AuditLogTable, AuditOutcome } from '../catalog/schema.ts';

/** Every kind of event the audit log records. */
export const auditActions = [
  'login',
  'logout',
  'password.change',
  'totp.enable',
  'token.create',
  'token.revoke',
  'user.create',
  'user.update',
  'user.disable',
  'user.enable',
  'user.reset_password',
  'grant.add',
  'grant.revoke',
  'hospital.create',
  'project.create',
  'project.add_member',
  'project.remove_member',
  'access_request.create',
  'access_request.decide',
  'access.denied',
  'access.probe',
  'query.submit',
  'query.cancel',
  'saved_query.create',
  'saved_query.delete',
  'saved_query.update',
  'export.create',
  'export.review',
  'download',
  'upload',
  'upload.start',
  'upload.cancel',
  'release.publish',
  'release.preview',
  'upload.problems',
  'reidentify',
  'audit.read',
  'audit.verify',
  'backup.create',
  'backup.restore',
] as const;

export type AuditAction = (typeof auditActions)[number];

export const auditOutcomes = [
  'success',
  'failure',
  'denied',
] as const satisfies readonly AuditOutcome[];

/** Who did something, and from where, as the log keeps it. */
export type Actor = {
  /** The user's id; null when nobody is known (a login with an unknown name). */
  userId: string | null;
  /** The user's e-mail, or the name given at a failed login. */
  name: string | null;
  /** The client's address for the API; "cli:<os user>@<host>" for the CLI. */
  source: string;
};

export type AuditEvent = {
  action: AuditAction;
  actor: Actor;
  /** What the event was about, as "<kind>:<id>": "dataset:lab-results", "query:<uuid>". */
  target?: string;
  outcome?: AuditOutcome;
  /**
   * Facts about the event: ids, counts, hashes, reasons. Never a patient identifier and never
   * a secret; the callers pass only catalog ids and their own words.
   */
  details?: Record<string, unknown>;
};

export type AuditEntry = {
  seq: number;
  at: Date;
  actorId: string | null;
  actor: string | null;
  action: string;
  target: string | null;
  outcome: AuditOutcome;
  source: string;
  details: Record<string, unknown>;
  prevHash: string;
  hash: string;
};

export type AuditVerification =
  | {
      ok: true;
      entries: number;
      head: { seq: number; hash: string } | null;
      /** How many signed checkpoints the chain matched, and the newest of them. */
      checkpoints?: number;
      lastCheckpoint?: { seq: number; at: string } | null;
    }
  | { ok: false; entries: number; firstBad: number; problem: string };

export type AuditFilter = {
  actor?: string;
  action?: string;
  target?: string;
  outcome?: AuditOutcome;
  from?: Date;
  to?: Date;
};

/** The hash the first entry chains to. */
const genesisHash = '0'.repeat(64);

/**
 * One lock number for appends across every process on one PostgreSQL: entries are numbered
 * and chained one at a time. (The number only has to be the same everywhere.)
 */
const appendLockId = 4_210_556_231;

const verifyBatch = 2000;

/**
 * The audit log: append-only, each entry chained to the one before with an HMAC under a key
 * kept outside the catalog, so that someone who can write to the database can neither change
 * nor remove an entry, nor forge a new chain, without `verify` naming the first entry affected.
 */
export function auditLog(
  db: CatalogDb,
  key: Buffer,
  options: {
    /**
     * The catalog runs one transaction at a time (the embedded PGlite, one connection that a
     * transaction holds to its end): appends cannot interleave, and take no lock.
     */
    oneTransactionAtATime?: boolean;
  } = {},
) {
  const hashOf = (prevHash: string, entry: Omit<AuditEntry, 'prevHash' | 'hash'>) =>
    auditEntryHash(key, prevHash, entry);

  return {
    /**
     * Appends one event. Given a transaction, the entry commits or rolls back with the change
     * it records: a grant is never added without its entry.
     */
    async record(event: AuditEvent, trx?: CatalogDb): Promise<void> {
      const append = async (tx: CatalogDb) => {
        if (!options.oneTransactionAtATime) {
          await sql`select pg_advisory_xact_lock(${appendLockId})`.execute(tx);
        }
        const last = await tx
          .selectFrom('audit_log')
          .select(['seq', 'hash'])
          .orderBy('seq', 'desc')
          .limit(1)
          .executeTakeFirst();
        const entry = {
          seq: last ? Number(last.seq) + 1 : 1,
          at: new Date(),
          actorId: event.actor.userId,
          actor: event.actor.name,
          action: event.action,
          target: event.target ?? null,
          outcome: event.outcome ?? 'success',
          source: event.actor.source,
          details: event.details ?? {},
        };
        const prevHash = last?.hash ?? genesisHash;
        await tx
          .insertInto('audit_log')
          .values({
            seq: entry.seq,
            at: entry.at,
            actor_id: entry.actorId,
            actor: entry.actor,
            action: entry.action,
            target: entry.target,
            outcome: entry.outcome,
            source: entry.source,
            details: JSON.stringify(entry.details),
            prev_hash: prevHash,
            hash: hashOf(prevHash, entry),
          })
          .execute();
      };
      if (trx) await append(trx);
      else await db.transaction().execute(append);
    },

    /**
     * Walks the whole chain in order. The first entry whose number, link or content does not
     * fit is named; an untouched log reports its head, which an operator can note elsewhere to
     * detect later removal of the newest entries too.
     */
    async verify(): Promise<AuditVerification> {
      let expectedSeq = 1;
      let prevHash = genesisHash;
      let head: { seq: number; hash: string } | null = null;
      for (;;) {
        const rows = await db
          .selectFrom('audit_log')
          .selectAll()
          .where('seq', '>=', String(expectedSeq))
          .orderBy('seq')
          .limit(verifyBatch)
          .execute();
        for (const row of rows) {
          const entry = toAuditEntry(row);
          const bad = (problem: string): AuditVerification => ({
            ok: false,
            entries: expectedSeq - 1,
            firstBad: expectedSeq,
            problem,
          });
          if (entry.seq !== expectedSeq) {
            return bad(
              `entr${entry.seq - expectedSeq === 1 ? 'y' : 'ies'} ${expectedSeq}${entry.seq - expectedSeq === 1 ? '' : `–${entry.seq - 1}`} missing (deleted)`,
            );
          }
          if (entry.prevHash !== prevHash) {
            return bad(`entry ${entry.seq} does not follow the entry before it`);
          }
          if (!sameHex(entry.hash, hashOf(prevHash, entry))) {
            return bad(`entry ${entry.seq} was changed after it was written`);
          }
          prevHash = entry.hash;
          head = { seq: entry.seq, hash: entry.hash };
          expectedSeq += 1;
        }
        if (rows.length < verifyBatch) return { ok: true, entries: expectedSeq - 1, head };
      }
    },

    /** The last entry's number and hash, as committed; null for an empty log. */
    async head(): Promise<{ seq: number; hash: string } | null> {
      const row = await db
        .selectFrom('audit_log')
        .select(['seq', 'hash'])
        .orderBy('seq', 'desc')
        .limit(1)
        .executeTakeFirst();
      return row ? { seq: Number(row.seq), hash: row.hash } : null;
    },

    /** The hashes of the entries with these numbers; a number with no entry is left out. */
    async hashesAt(seqs: readonly number[]): Promise<Map<number, string>> {
      const found = new Map<number, string>();
      for (let i = 0; i < seqs.length; i += verifyBatch) {
        const rows = await db
          .selectFrom('audit_log')
          .select(['seq', 'hash'])
          .where(
            'seq',
            'in',
            seqs.slice(i, i + verifyBatch).map((seq) => String(seq)),
          )
          .execute();
        for (const row of rows) found.set(Number(row.seq), row.hash);
      }
      return found;
    },

    /** Failed or refused sign-ins from an address since a time: what throttles an attacker. */
    async failedLoginsFrom(source: string, since: Date): Promise<number> {
      const row = await db
        .selectFrom('audit_log')
        .select((eb) => eb.fn.countAll<string>().as('n'))
        .where('source', '=', source)
        .where('action', '=', 'login')
        .where('at', '>=', since)
        .where('outcome', '!=', 'success')
        .executeTakeFirstOrThrow();
      return Number(row.n);
    },

    /** Entries matching the filter, newest first, one page at a time. */
    async search(
      filter: AuditFilter,
      page: { page: number; pageSize: number },
    ): Promise<{ entries: AuditEntry[]; total: number }> {
      let query = db.selectFrom('audit_log');
      if (filter.actor) query = query.where('actor', 'ilike', `%${escapeLike(filter.actor)}%`);
      if (filter.action) query = query.where('action', 'like', `${escapeLike(filter.action)}%`);
      if (filter.target) query = query.where('target', '=', filter.target);
      if (filter.outcome) query = query.where('outcome', '=', filter.outcome);
      if (filter.from) query = query.where('at', '>=', filter.from);
      if (filter.to) query = query.where('at', '<', filter.to);
      const [rows, count] = await Promise.all([
        query
          .selectAll()
          .orderBy('seq', 'desc')
          .limit(page.pageSize)
          .offset((page.page - 1) * page.pageSize)
          .execute(),
        query.select((eb) => eb.fn.countAll<string>().as('n')).executeTakeFirstOrThrow(),
      ]);
      return { entries: rows.map(toAuditEntry), total: Number(count.n) };
    },
  };
}

export type AuditLog = ReturnType<typeof auditLog>;

/** An entry's HMAC under the key, chained to the hash of the entry before it. */
export function auditEntryHash(
  key: Buffer,
  prevHash: string,
  entry: Omit<AuditEntry, 'prevHash' | 'hash'>,
): string {
  return createHmac('sha256', key)
    .update(`medlake audit\n${prevHash}\n`)
    .update(
      canonicalJson({
        seq: entry.seq,
        at: entry.at.toISOString(),
        actorId: entry.actorId,
        actor: entry.actor,
        action: entry.action,
        target: entry.target,
        outcome: entry.outcome,
        source: entry.source,
        details: entry.details,
      }),
    )
    .digest('hex');
}

/** A row of the audit_log table as the entry it records. */
export function toAuditEntry(row: Selectable<AuditLogTable>): AuditEntry {
  return {
    seq: Number(row.seq),
    at: row.at,
    actorId: row.actor_id,
    actor: row.actor,
    action: row.action,
    target: row.target,
    outcome: row.outcome,
    source: row.source,
    details: row.details,
    prevHash: row.prev_hash,
    hash: row.hash,
  };
}

function sameHex(a: string, b: string): boolean {
  const left = Buffer.from(a, 'utf8');
  const right = Buffer.from(b, 'utf8');
  return left.length === right.length && timingSafeEqual(left, right);
}
