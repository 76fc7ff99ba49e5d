import { randomBytes } from 'node:crypto';
import { sql } from 'kysely';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  catalogBackends,
  createTestCatalog,
  type TestCatalog,
} from '../../test/catalog-backends.ts';
import { migrateToLatest } from '../catalog/migrate.ts';
import { auditLog, type Actor, type AuditLog } from './audit-log.ts';

const alice: Actor = {
  userId: '00000000-0000-4000-8000-000000000001',
  name: 'alice@example.org',
  source: '127.0.0.1',
};

describe.each(catalogBackends())('audit log on %s', (kind) => {
  let catalog: TestCatalog;
  let log: AuditLog;
  const key = randomBytes(32);

  /** What someone with write access to the database, but not the key, could do. */
  const tamper = async (statement: ReturnType<typeof sql>) => {
    await sql`alter table audit_log disable trigger audit_log_append_only`.execute(catalog.db);
    await statement.execute(catalog.db);
    await sql`alter table audit_log enable trigger audit_log_append_only`.execute(catalog.db);
  };

  const recordSome = async (count: number) => {
    for (let i = 1; i <= count; i += 1) {
      await log.record({
        action: 'query.submit',
        actor: alice,
        target: `query:${i}`,
        details: { dataset: 'lab-results', specSha256: 'ab'.repeat(32), n: i },
      });
    }
  };

  beforeEach(async () => {
    catalog = await createTestCatalog(kind);
    await migrateToLatest(catalog.db);
    // As the platform opens it: without its lock on PGlite, which runs one transaction at a time.
    log = auditLog(catalog.db, key, { oneTransactionAtATime: kind === 'pglite' });
  });

  afterEach(async () => {
    await catalog.dispose();
  });

  it('verifies an untouched log and reports its head', async () => {
    expect(await log.verify()).toEqual({ ok: true, entries: 0, head: null });
    await recordSome(5);
    const result = await log.verify();
    expect(result).toMatchObject({ ok: true, entries: 5, head: { seq: 5 } });
  });

  it('numbers and chains entries appended at the same time without gaps', async () => {
    await Promise.all(
      Array.from({ length: 20 }, (_, i) =>
        log.record({ action: 'download', actor: alice, target: `export:${i}` }),
      ),
    );
    const { entries, total } = await log.search({}, { page: 1, pageSize: 100 });
    expect(total).toBe(20);
    expect(entries.map((entry) => entry.seq)).toEqual(Array.from({ length: 20 }, (_, i) => 20 - i));
    expect(await log.verify()).toMatchObject({ ok: true, entries: 20 });
  });

  it('refuses updates and deletes from the application', async () => {
    await recordSome(1);
    await expect(
      sql`update audit_log set outcome = 'failure' where seq = 1`.execute(catalog.db),
    ).rejects.toThrow(/append-only/);
    await expect(sql`delete from audit_log where seq = 1`.execute(catalog.db)).rejects.toThrow(
      /append-only/,
    );
  });

  it('names the first entry changed directly in the database', async () => {
    await recordSome(6);
    await tamper(sql`update audit_log set actor = 'mallory@example.org' where seq = 4`);
    expect(await log.verify()).toEqual({
      ok: false,
      entries: 3,
      firstBad: 4,
      problem: 'entry 4 was changed after it was written',
    });
  });

  it('names a change inside the details, whatever the key order', async () => {
    await recordSome(3);
    await tamper(sql`update audit_log set details = details || '{"n": 99}'::jsonb where seq = 2`);
    expect(await log.verify()).toMatchObject({ ok: false, firstBad: 2 });
  });

  it('names the place of a deleted entry', async () => {
    await recordSome(6);
    await tamper(sql`delete from audit_log where seq = 3`);
    expect(await log.verify()).toEqual({
      ok: false,
      entries: 2,
      firstBad: 3,
      problem: 'entry 3 missing (deleted)',
    });
  });

  it('detects a deleted entry whose successors were renumbered', async () => {
    await recordSome(5);
    await tamper(sql`delete from audit_log where seq = 2`);
    await tamper(sql`update audit_log set seq = seq - 1 where seq > 2`);
    expect(await log.verify()).toMatchObject({ ok: false, firstBad: 2 });
  });

  it('detects a chain rebuilt without the key', async () => {
    await recordSome(3);
    const forger = auditLog(catalog.db, randomBytes(32));
    await tamper(sql`delete from audit_log where seq = 3`);
    await forger.record({ action: 'query.submit', actor: alice, target: 'query:forged' });
    expect(await log.verify()).toMatchObject({ ok: false, firstBad: 3 });
  });

  it('searches by actor, action, outcome and time, newest first', async () => {
    await recordSome(3);
    await log.record({
      action: 'login',
      actor: { userId: null, name: 'nobody@example.org', source: '10.0.0.9' },
      outcome: 'failure',
      details: { reason: 'unknown user' },
    });
    const failures = await log.search({ outcome: 'failure' }, { page: 1, pageSize: 10 });
    expect(failures.total).toBe(1);
    expect(failures.entries[0]).toMatchObject({ action: 'login', source: '10.0.0.9' });
    const queries = await log.search({ actor: 'ALICE', action: 'query' }, { page: 2, pageSize: 2 });
    expect(queries.total).toBe(3);
    expect(queries.entries.map((entry) => entry.target)).toEqual(['query:1']);
    const none = await log.search({ actor: '%' }, { page: 1, pageSize: 10 });
    expect(none.total).toBe(0);
    const later = await log.search(
      { from: new Date(Date.now() + 60_000) },
      { page: 1, pageSize: 10 },
    );
    expect(later.total).toBe(0);
  });
});
