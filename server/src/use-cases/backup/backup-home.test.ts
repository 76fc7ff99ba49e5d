import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestPlatform, testActor, type TestPlatform } from '../../../test/helper.ts';
import { ingest, listFiles, prepareDataset, synthea } from '../../../test/ingest-helpers.ts';
import { researcherWithAccess, runQuery } from '../../../test/query-helpers.ts';
import { lakeRowFiles, readParquetObjects } from '../../../test/parquet.ts';
import { usersRepository } from '../../catalog/users-repository.ts';
import { loadEnv } from '../../env.ts';
import { openPlatform, type Platform } from '../../platform.ts';
import { openConfiguredVault } from '../../vault/configured-vault.ts';
import { backupHome, restoreHome } from './backup-home.ts';

const specs = [
  { dataset: 'synthea-observations', measures: [{ fn: 'count' }, { fn: 'patients' }] },
  {
    dataset: 'synthea-observations',
    groupBy: [{ column: 'month' }, { column: 'sex' }],
    measures: [{ fn: 'count' }, { fn: 'mean', column: 'value' }],
  },
  {
    dataset: 'synthea-observations',
    where: { column: 'code', op: 'eq', value: '8302-2' },
    measures: [{ fn: 'count' }],
  },
];

/** Every answer of the specs, as the researcher reads them. */
async function answers(platform: Platform, email: string) {
  const user = await usersRepository(platform.catalog.db).byEmail(email);
  if (!user) throw new Error(`${email} is not in the catalog`);
  const all = [];
  for (const spec of specs) {
    // Groups come in no particular order: compared as sets. Means to 12 significant digits: the
    // engine adds a mean's partial sums in whatever order its threads finish, so the last bit varies.
    const rows = (await runQuery(platform, user, spec)).rows.map((row) =>
      JSON.stringify(row, (_key, value: unknown) =>
        typeof value === 'number' ? Number(value.toPrecision(12)) : value,
      ),
    );
    all.push(rows.sort());
  }
  return all;
}

describe('backup and restore', () => {
  let original: TestPlatform;
  let scratch: string;
  let before: unknown;
  let pseudonym: string;

  beforeAll(async () => {
    scratch = await mkdtemp(path.join(tmpdir(), 'medlake-backup-'));
    original = await createTestPlatform();
    await prepareDataset(original, 'synthea-observations');
    for (const month of ['2020-12', '2021-03'] as const) {
      expect((await ingest(original, { file: synthea(month), month })).status).toBe('published');
    }
    await researcherWithAccess(original, 'row@example.org', 'synthea-observations', 'row');
    before = await answers(original, 'row@example.org');
    // A pseudonym of the lake: results show each user's own (privacy/privacy-secrets.ts).
    const [lakeFile] = await lakeRowFiles(original.store);
    const [row] = await readParquetObjects(original.store, [lakeFile!]);
    pseudonym = String(row?.patient);
  }, 120_000);

  afterAll(async () => {
    await original?.dispose();
    await rm(scratch, { recursive: true, force: true });
  });

  it('restores onto an empty home with identical query results, the audit chain and the vault', async () => {
    const to = path.join(scratch, 'backup');
    const vaultTo = path.join(scratch, 'vault-backup');
    const manifest = await backupHome(original, testActor, { to, vaultTo });
    expect(manifest.objects.some((object) => object.key.startsWith('lake/'))).toBe(true);
    // The vault and its key go only to their own folder.
    expect((await listFiles(to)).some((file) => /vault/.test(path.basename(file)))).toBe(false);
    expect((await readdir(vaultTo)).sort()).toEqual(['vault.key', 'vault.sqlite']);

    const home = path.join(scratch, 'restored-home');
    const env = loadEnv({ MEDLAKE_HOME: home, LOG_LEVEL: 'silent' });
    await restoreHome(env, testActor, { from: to, vaultFrom: vaultTo });
    const restored = await openPlatform(env);
    try {
      expect(await answers(restored, 'row@example.org')).toEqual(before);
      const verification = await restored.audit.verify();
      expect(verification).toMatchObject({ ok: true });
      const actions = (await restored.audit.search({}, { page: 1, pageSize: 5 })).entries.map(
        (entry) => entry.action,
      );
      expect(actions).toContain('backup.restore');
    } finally {
      await restored.close();
    }
    // The restored vault maps the lake's pseudonyms back as the original does.
    const [originalVault, restoredVault] = [
      await openConfiguredVault(original.env),
      await openConfiguredVault(env),
    ];
    try {
      const request = { custodian: 'test', reason: 'backup check' };
      expect(restoredVault.reidentify(pseudonym, request).realId).toBe(
        originalVault.reidentify(pseudonym, request).realId,
      );
    } finally {
      originalVault.close();
      restoredVault.close();
    }
  });

  it('refuses a vault destination inside the backup, a folder in use, and a home in use', async () => {
    const to = path.join(scratch, 'second');
    await expect(
      backupHome(original, testActor, { to, vaultTo: path.join(to, 'vault') }),
    ).rejects.toThrow(/folder of its own/);
    const used = path.join(scratch, 'used');
    await mkdir(used);
    await writeFile(path.join(used, 'something'), 'x');
    await expect(
      backupHome(original, testActor, { to: used, vaultTo: path.join(scratch, 'v2') }),
    ).rejects.toThrow(/not empty/);
    await expect(
      restoreHome(original.env, testActor, {
        from: path.join(scratch, 'backup'),
        vaultFrom: path.join(scratch, 'vault-backup'),
      }),
    ).rejects.toThrow(/already holds a catalog/);
    expect(existsSync(path.join(scratch, 'v2'))).toBe(false);
  });
});
