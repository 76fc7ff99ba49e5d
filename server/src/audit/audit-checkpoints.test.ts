import { readdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { sql } from 'kysely';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { catalogBackends } from '../../test/catalog-backends.ts';
import { createTestPlatform, testActor, type TestPlatform } from '../../test/helper.ts';
import { readKeyFile } from '../key-file.ts';
import { verifyAuditLog } from '../use-cases/audit/read-audit-log.ts';
import { auditEntryHash, toAuditEntry } from './audit-log.ts';

describe.each(catalogBackends())('audit checkpoints outside MEDLAKE_HOME, on %s', (kind) => {
  let platform: TestPlatform;

  const recordSome = async (count: number) => {
    for (let i = 0; i < count; i += 1) {
      await platform.audit.record({
        action: 'grant.add',
        actor: testActor,
        target: `grant:${i}`,
        details: { dataset: 'lab-results', level: 'aggregate' },
      });
    }
  };
  const checkpoint = async () =>
    expect(await platform.auditCheckpoints.write(await platform.audit.head())).toBe(true);

  /**
   * What someone who holds the catalog and MEDLAKE_HOME (every file in it) can do: switch the
   * append-only trigger off, change an entry, and sign the chain from there on again with a key.
   */
  const rewriteFrom = async (seq: number, key: Buffer) => {
    await sql`alter table audit_log disable trigger audit_log_append_only`.execute(
      platform.catalog.db,
    );
    await platform.catalog.db
      .updateTable('audit_log')
      .set({ details: JSON.stringify({ dataset: 'lab-results', level: 'row' }) })
      .where('seq', '=', String(seq))
      .execute();
    const rows = await platform.catalog.db
      .selectFrom('audit_log')
      .selectAll()
      .where('seq', '>=', String(seq - 1))
      .orderBy('seq')
      .execute();
    let prevHash = rows[0]!.hash;
    for (const row of rows.slice(1)) {
      const hash = auditEntryHash(key, prevHash, toAuditEntry(row));
      await platform.catalog.db
        .updateTable('audit_log')
        .set({ prev_hash: prevHash, hash })
        .where('seq', '=', row.seq)
        .execute();
      prevHash = hash;
    }
    await sql`alter table audit_log enable trigger audit_log_append_only`.execute(
      platform.catalog.db,
    );
  };

  beforeEach(async () => {
    platform = await createTestPlatform(kind);
  });
  afterEach(async () => {
    await platform.dispose();
  });

  it('keeps its checkpoints and their key out of MEDLAKE_HOME', async () => {
    const home = path.resolve(platform.layout.home);
    const directory = path.resolve(platform.auditCheckpoints.directory);
    expect(path.relative(home, directory).startsWith('..')).toBe(true);
    expect(await readdir(directory)).toContain('checkpoint-signing.key');
  });

  it('catches an entry edited and re-signed with every key MEDLAKE_HOME holds', async () => {
    await recordSome(5);
    await checkpoint();
    const lastGood = (await platform.audit.head())!.seq;
    await recordSome(5);
    await checkpoint();
    await recordSome(3);
    const before = await verifyAuditLog(platform, testActor);
    expect(before).toMatchObject({ ok: true, checkpoints: expect.any(Number) });

    const keyFiles = await readdir(platform.layout.keys);
    expect(keyFiles).toContain('audit.key');
    for (const file of keyFiles) {
      await rewriteFrom(lastGood + 2, await readKeyFile(path.join(platform.layout.keys, file)));
      const chainOnly = await platform.audit.verify();
      // With the audit key the chain alone looks whole: only the checkpoints tell.
      if (file === 'audit.key') expect(chainOnly.ok).toBe(true);
      const result = await verifyAuditLog(platform, testActor);
      expect(result, file).toMatchObject({
        ok: false,
        firstBad: lastGood + 1,
        problem: expect.stringMatching(/differ from the checkpoint .* \(the chain was rewritten\)/),
      });
    }
  });

  it('names the newest entries deleted since the last checkpoint saw them', async () => {
    await recordSome(4);
    await checkpoint();
    await recordSome(4);
    await checkpoint();
    const head = (await platform.audit.head())!.seq;
    await sql`alter table audit_log disable trigger audit_log_append_only`.execute(
      platform.catalog.db,
    );
    await sql`delete from audit_log where seq > ${String(head - 2)}`.execute(platform.catalog.db);
    await sql`alter table audit_log enable trigger audit_log_append_only`.execute(
      platform.catalog.db,
    );
    expect((await platform.audit.verify()).ok).toBe(true);
    const result = await verifyAuditLog(platform, testActor);
    expect(result).toMatchObject({
      ok: false,
      firstBad: head - 3,
      problem: expect.stringMatching(`entry ${head}, noted in the checkpoint of .*, is missing`),
    });
  });

  it('refuses a checkpoint not signed by the checkpoint key', async () => {
    await recordSome(3);
    await checkpoint();
    const directory = platform.auditCheckpoints.directory;
    const name = (await readdir(directory))
      .filter((file) => file.startsWith('checkpoint-0'))
      .at(-1)!;
    const forged = JSON.parse(await readFile(path.join(directory, name), 'utf8')) as {
      hash: string;
    };
    await writeFile(
      path.join(directory, name),
      JSON.stringify({ ...forged, hash: 'f'.repeat(64) }),
    );
    const result = await verifyAuditLog(platform, testActor);
    expect(result).toMatchObject({
      ok: false,
      problem: expect.stringMatching(/is not signed by the checkpoint key$/),
    });
  });
});
