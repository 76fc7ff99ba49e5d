import { readFile } from 'node:fs/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestPlatform, testActor, type TestPlatform } from '../../test/helper.ts';
import { contractFile, ingest, prepareDataset, synthea } from '../../test/ingest-helpers.ts';
import { researcherWithAccess, runQuery } from '../../test/query-helpers.ts';
import { grantsRepository } from '../catalog/grants-repository.ts';
import type { User } from '../catalog/users-repository.ts';
import type { Platform } from '../platform.ts';
import { forgetResultRows } from '../query/result-cache.ts';
import { setUserDisabled } from '../use-cases/accounts/manage-users.ts';
import { grantDatasetAccess, revokeGrant } from '../use-cases/manage-access.ts';
import { exportQueryResult } from '../use-cases/queries/export-query.ts';
import { getQuery, readResultPage } from '../use-cases/queries/read-query.ts';
import { saveDataset } from '../use-cases/manage-datasets.ts';
import {
  maxCatalogBytes,
  storedInCatalog,
  storedResultRows,
} from '../use-cases/queries/stored-result.ts';

/**
 * Attacks on a small aggregate result stored in the catalog (query_results) rather than as a
 * file: what the file's path promises must hold here too. result-access-attacks.test.ts runs
 * with every result as a file; here the default path, with the catalog's row limit at 2 so
 * that a result of exactly 2 rows is kept in the catalog and one of more is not.
 */

const dataset = 'synthea-observations';
/** Two groups (F and M): exactly the catalog's limit here. */
const bySex = { dataset, groupBy: [{ column: 'sex' }], measures: [{ fn: 'patients' }] };

describe('a result stored in the catalog', () => {
  let platform: TestPlatform;

  async function narrowTo(user: User, hospitals: string[]): Promise<void> {
    for (const grant of await grantsRepository(platform.catalog.db).active(
      user.id,
      dataset,
      new Date(),
    )) {
      await revokeGrant(platform, testActor, grant.id);
    }
    await grantDatasetAccess(platform, testActor, {
      email: user.email,
      datasetId: dataset,
      level: 'aggregate',
      hospitals,
    });
  }

  async function keptInCatalog(user: User, spec: object = bySex) {
    const { job, rows } = await runQuery(platform, user, spec);
    expect(job.status).toBe('succeeded');
    expect(await storedResultRows(platform, job)).toEqual(expect.any(Array));
    return { job, rows };
  }

  beforeAll(async () => {
    platform = await createTestPlatform('pglite', { MEDLAKE_RESULT_ROWS_IN_CATALOG: '2' });
    await prepareDataset(platform, dataset, ['synthea', 'evil']);
    await ingest(platform, { file: synthea('all'), month: '2021-06' });
    await ingest(platform, { file: synthea('all'), month: '2021-06', hospital: 'evil' });
  }, 180_000);

  afterAll(async () => {
    await platform?.dispose();
  });

  it('is kept at exactly the row limit, and not one row past it', async () => {
    const user = await researcherWithAccess(platform, 'limit@example.org', dataset, 'aggregate');
    const { rows } = await keptInCatalog(user);
    expect(rows).toHaveLength(2);
    const wider = await runQuery(platform, user, {
      dataset,
      groupBy: [{ column: 'code' }],
      measures: [{ fn: 'patients' }],
    });
    expect(wider.rows.length).toBeGreaterThan(2);
    expect(await storedResultRows(platform, wider.job)).toBeUndefined();
  }, 120_000);

  it('never keeps a row-level result in the catalog', async () => {
    const user = await researcherWithAccess(platform, 'rows@example.org', dataset, 'row');
    const { job, rows } = await runQuery(platform, user, {
      dataset,
      select: ['code', 'value'],
      limit: 2,
    });
    expect(rows).toHaveLength(2);
    expect(await storedResultRows(platform, job)).toBeUndefined();
  }, 120_000);

  it('stops its pages and exports once a hospital it read is taken out of the grant', async () => {
    const user = await researcherWithAccess(platform, 'narrow@example.org', dataset, 'aggregate');
    const { job } = await keptInCatalog(user);
    await narrowTo(user, ['synthea']);
    // From memory, then from the catalog's rows, as another server would read them.
    const page = () => readResultPage(platform, user, job.id, { page: 1, pageSize: 10 });
    await expect(page()).rejects.toMatchObject({ code: 'access_lost' });
    forgetResultRows(job.id);
    await expect(page()).rejects.toMatchObject({ code: 'access_lost' });
    for (const format of ['csv', 'parquet'] as const) {
      await expect(
        exportQueryResult(platform, { user, source: 'test' }, job.id, format),
      ).rejects.toMatchObject({ code: 'access_lost' });
    }
    // Nothing was written for an export refused.
    expect(await platform.store.list(`results/${job.id}/`)).toEqual([]);
  }, 120_000);

  it('stops its pages and exports once the grant is revoked or the account disabled', async () => {
    for (const end of ['revoked', 'disabled'] as const) {
      const user = await researcherWithAccess(platform, `${end}@example.org`, dataset, 'aggregate');
      const { job } = await keptInCatalog(user);
      forgetResultRows(job.id);
      if (end === 'revoked') {
        for (const grant of await grantsRepository(platform.catalog.db).active(
          user.id,
          dataset,
          new Date(),
        )) {
          await revokeGrant(platform, testActor, grant.id);
        }
      } else {
        await setUserDisabled(platform, testActor, { email: user.email, disabled: true });
      }
      // The account as a request would now carry it, past the sign-in's own refusal.
      const now = { ...user, disabledAt: end === 'disabled' ? new Date() : null };
      const refused = { code: end === 'revoked' ? 'grant_revoked' : 'no_dataset_access' };
      await expect(
        readResultPage(platform, now, job.id, { page: 1, pageSize: 10 }),
      ).rejects.toMatchObject(refused);
      await expect(
        exportQueryResult(platform, { user: now, source: 'test' }, job.id, 'csv'),
      ).rejects.toMatchObject(refused);
      expect(await platform.store.list(`results/${job.id}/`)).toEqual([]);
    }
  }, 120_000);

  it('is never how a result of a dataset with an airlock is kept', async () => {
    const contract = JSON.parse(await readFile(contractFile(dataset), 'utf8'));
    await saveDataset(platform, { ...contract, name: 'locked', privacy: { airlock: true } });
    const published = await ingest(platform, {
      file: synthea('all'),
      dataset: 'locked',
      month: '2021-06',
    });
    expect(published.status).toBe('published');
    const user = await researcherWithAccess(platform, 'locked@example.org', 'locked', 'row');
    // Two groups, within the limit: on a dataset without an airlock they would be kept.
    const { job } = await runQuery(platform, user, { ...bySex, dataset: 'locked' });
    expect(job.status).toBe('succeeded');
    expect(await storedResultRows(platform, job)).toBeUndefined();
    expect(await platform.store.exists((await getQuery(platform, user, job.id)).resultKey!)).toBe(
      true,
    );
  }, 120_000);

  it('holds at most its bound in bytes of JSON, whatever the characters', () => {
    // Two groups (the limit here) named in two-byte characters: under the bound in UTF-16
    // code units (what String.length counts), over it in bytes, which the catalog stores.
    const rows = ['a', 'b'].map((name) => ({
      code: `${name}:${'é'.repeat(100_000)}`,
      patients: 10,
      suppressed: false,
    }));
    const json = JSON.stringify(rows);
    expect(json.length).toBeLessThan(maxCatalogBytes);
    expect(Buffer.byteLength(json)).toBeGreaterThan(maxCatalogBytes);
    expect(storedInCatalog(platform, { privacy: { airlock: false } }, rows.slice(0, 1))).toBe(true);
    expect(storedInCatalog(platform, { privacy: { airlock: false } }, rows)).toBe(false);
  });

  it('leaves no copy of its rows in the store when the export’s file from them fails', async () => {
    const user = await researcherWithAccess(platform, 'broken@example.org', dataset, 'aggregate');
    const { job } = await keptInCatalog(user);
    // The copy of the rows for the export is written, then the write reports a failure (a
    // store that fails at the end of an upload, a full disk).
    const engine = platform.engine;
    const failing = {
      ...platform,
      engine: {
        ...engine,
        kind: engine.kind,
        dialect: engine.dialect,
        writeRowsAsParquet: async (...args: Parameters<typeof engine.writeRowsAsParquet>) => {
          await engine.writeRowsAsParquet(...args);
          throw new Error('the store failed at the end of the write');
        },
      },
    } satisfies Platform;
    await expect(
      exportQueryResult(failing, { user, source: 'test' }, job.id, 'csv'),
    ).rejects.toThrow(/store failed/);
    expect(await platform.store.list(`results/${job.id}/`)).toEqual([]);
    // The result itself is still there and exports as it should.
    const current = await getQuery(platform, user, job.id);
    expect(await storedResultRows(platform, current)).toHaveLength(2);
    await exportQueryResult(platform, { user, source: 'test' }, job.id, 'csv');
    expect(await platform.store.list(`results/${job.id}/`)).toEqual([
      `results/${job.id}/export.csv`,
    ]);
  }, 120_000);
});
