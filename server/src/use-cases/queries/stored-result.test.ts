import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestPlatform, type TestPlatform } from '../../../test/helper.ts';
import { ingest, prepareDataset, synthea } from '../../../test/ingest-helpers.ts';
import { readParquet } from '../../../test/parquet.ts';
import { researcherWithAccess, runQuery } from '../../../test/query-helpers.ts';
import type { User } from '../../catalog/users-repository.ts';
import { cachedResultRows, forgetResultRows } from '../../query/result-cache.ts';
import { exportQueryResult } from './export-query.ts';
import { getQuery, readResultPage } from './read-query.ts';
import { storedResultRows } from './stored-result.ts';

/**
 * A small aggregate result is stored in the catalog with its job's success, not as a Parquet
 * file. Whatever shows it must show what the file would have held: its pages from memory and
 * from the catalog, its exports in both formats, against the same query on a platform that
 * stores every result as a file. And a store that fails shows nothing.
 */
const dataset = 'synthea-observations';
const spec = {
  dataset,
  groupBy: [{ column: 'code' }],
  measures: [{ fn: 'patients' }, { fn: 'count' }, { fn: 'mean', column: 'value' }],
};
/**
 * Counts come out the same from every run: two runs' means may differ in the last bit (the
 * engine adds in whatever order its threads finish), so they are compared within one run.
 */
const exactSpec = {
  dataset,
  groupBy: [{ column: 'code' }],
  measures: [{ fn: 'patients' }, { fn: 'count' }],
};

describe('small results stored in the catalog', () => {
  let inCatalog: TestPlatform;
  let asFiles: TestPlatform;
  const researchers = new Map<TestPlatform, User>();

  async function prepare(platform: TestPlatform) {
    await prepareDataset(platform, dataset);
    await ingest(platform, { file: synthea('all'), month: '2021-06' });
    researchers.set(
      platform,
      await researcherWithAccess(platform, 'agg@example.org', dataset, 'aggregate'),
    );
  }

  beforeAll(async () => {
    inCatalog = await createTestPlatform();
    asFiles = await createTestPlatform('pglite', { MEDLAKE_RESULT_ROWS_IN_CATALOG: '0' });
    await prepare(inCatalog);
    await prepare(asFiles);
  }, 180_000);

  afterAll(async () => {
    await inCatalog?.dispose();
    await asFiles?.dispose();
  });

  const user = (platform: TestPlatform) => researchers.get(platform)!;

  async function exported(platform: TestPlatform, id: string, format: 'csv' | 'parquet') {
    await exportQueryResult(platform, { user: user(platform), source: 'test' }, id, format);
    const file = platform.store.locate(`results/${id}/export.${format}`);
    return format === 'csv' ? readFile(file, 'utf8') : readParquet(file);
  }

  it('gives the same pages from the catalog as from memory, doubles bit for bit', async () => {
    const { job, rows } = await runQuery(inCatalog, user(inCatalog), spec);
    expect(job.status).toBe('succeeded');
    expect(cachedResultRows(job.id)).toBeDefined();
    // Nothing of it in the store, not even an empty folder on local disk.
    expect(existsSync(inCatalog.store.locate(`results/${job.id}`))).toBe(false);
    const sorted = { sort: { column: 'value_mean', direction: 'desc' as const } };
    const fromMemory = await readResultPage(inCatalog, user(inCatalog), job.id, {
      page: 1,
      pageSize: 5,
      ...sorted,
    });
    forgetResultRows(job.id);
    expect(await runQueryPages(job.id)).toEqual(rows);
    expect(
      await readResultPage(inCatalog, user(inCatalog), job.id, { page: 1, pageSize: 5, ...sorted }),
    ).toEqual(fromMemory);
  }, 120_000);

  async function runQueryPages(id: string) {
    const page = await readResultPage(inCatalog, user(inCatalog), id, { page: 1, pageSize: 1000 });
    return page.rows;
  }

  it('pages, sorted pages and exports give what the stored file gives', async () => {
    const kept = await runQuery(inCatalog, user(inCatalog), exactSpec);
    const filed = await runQuery(asFiles, user(asFiles), exactSpec);
    expect(kept.job.status).toBe('succeeded');
    expect(kept.rows.length).toBeGreaterThan(1);
    expect(kept.rows).toEqual(filed.rows);
    expect(kept.job.summary).toEqual(filed.job.summary);

    // No file for the one, a file for the other; the catalog holds the rows of the one only.
    const keptJob = await getQuery(inCatalog, user(inCatalog), kept.job.id);
    const filedJob = await getQuery(asFiles, user(asFiles), filed.job.id);
    expect(await inCatalog.store.exists(keptJob.resultKey!)).toBe(false);
    expect(await asFiles.store.exists(filedJob.resultKey!)).toBe(true);
    expect(await storedResultRows(inCatalog, keptJob)).toHaveLength(kept.rows.length);
    expect(await storedResultRows(asFiles, filedJob)).toBeUndefined();

    // Out of memory, as another server or a restart would find it: read from the catalog.
    forgetResultRows(kept.job.id);
    forgetResultRows(filed.job.id);
    for (const pageSize of [3, 1000]) {
      for (const page of [1, 2]) {
        const ask = { page, pageSize };
        const fromCatalog = await readResultPage(inCatalog, user(inCatalog), kept.job.id, ask);
        const fromFile = await readResultPage(asFiles, user(asFiles), filed.job.id, ask);
        expect(fromCatalog).toEqual(fromFile);
      }
    }
    // Sorted by a column with ties: the engine orders tied rows as it likes, the catalog's
    // rows keep the result's order among them. The same rows, in an order that holds.
    const sorted = {
      page: 1,
      pageSize: 1000,
      sort: { column: 'rows', direction: 'desc' as const },
    };
    const byRows = await readResultPage(inCatalog, user(inCatalog), kept.job.id, sorted);
    const byRowsFromFile = await readResultPage(asFiles, user(asFiles), filed.job.id, sorted);
    const counts = byRows.rows.map((row) => Number(row.rows));
    expect(counts).toEqual([...counts].sort((a, b) => b - a));
    const byCode = (rows: ReadonlyArray<Record<string, unknown>>) =>
      [...rows].sort((a, b) => String(a.code).localeCompare(String(b.code)));
    expect(byCode(byRows.rows)).toEqual(byCode(byRowsFromFile.rows));
    expect(cachedResultRows(kept.job.id)).toBeUndefined();

    expect(await exported(inCatalog, kept.job.id, 'csv')).toEqual(
      await exported(asFiles, filed.job.id, 'csv'),
    );
    expect(await exported(inCatalog, kept.job.id, 'parquet')).toEqual(
      await exported(asFiles, filed.job.id, 'parquet'),
    );
    // The file written from the rows for the exports is gone once they are made.
    expect((await inCatalog.store.list(`results/${kept.job.id}/`)).sort()).toEqual([
      `results/${kept.job.id}/export.csv`,
      `results/${kept.job.id}/export.parquet`,
    ]);
  }, 120_000);

  it('a result whose store fails shows nothing: the job fails, no page, no rows kept', async () => {
    // The statement that would mark the job succeeded and store its rows cannot store them.
    await sql`ALTER TABLE query_results RENAME TO query_results_away`.execute(inCatalog.catalog.db);
    let failed;
    try {
      failed = await runQuery(inCatalog, user(inCatalog), spec);
    } finally {
      await sql`ALTER TABLE query_results_away RENAME TO query_results`.execute(
        inCatalog.catalog.db,
      );
    }
    expect(failed.job.status).toBe('failed');
    expect(failed.job.summary).toBeNull();
    expect(failed.rows).toEqual([]);
    expect(cachedResultRows(failed.job.id)).toBeUndefined();
    await expect(
      readResultPage(inCatalog, user(inCatalog), failed.job.id, { page: 1, pageSize: 10 }),
    ).rejects.toMatchObject({ code: 'result_not_ready' });
    await expect(
      exportQueryResult(inCatalog, { user: user(inCatalog), source: 'test' }, failed.job.id, 'csv'),
    ).rejects.toMatchObject({ code: 'result_not_ready' });
    expect(await storedResultRows(inCatalog, { id: failed.job.id })).toBeUndefined();
    expect(await inCatalog.store.list(`results/${failed.job.id}/`)).toEqual([]);
  }, 120_000);
});
