import { randomUUID } from 'node:crypto';
import type { DatasetContract, QuerySummary } from '@medlake/shared';
import { queryJobsRepository } from '../../catalog/query-jobs-repository.ts';
import type { Platform } from '../../platform.ts';
import type { ResultColumn } from '../../query/compile-query.ts';

/**
 * Where a query's result is stored. A job succeeds only once its result is stored, and it is
 * stored in one of two places:
 *
 * - a small aggregate result (at most MEDLAKE_RESULT_ROWS_IN_CATALOG rows, by default and at
 *   most 1,000, and `maxCatalogBytes` of JSON), of a
 *   dataset without an airlock, in the catalog's `query_results`, by the same statement that
 *   marks the job succeeded (so both happen or neither, and no file is written on the way:
 *   writing one was 2–3 ms of a quick query's time, issue 22);
 * - any other result as a Parquet file at the job's `resultKey`, written before the job is
 *   marked succeeded. The airlock's output checks read that file before the job ends.
 *
 * Pages of a result come from memory (result-cache.ts) where this process made it, else from
 * the catalog's rows, else from the file. An export of a result kept in the catalog writes the
 * rows to a Parquet file of its own first, as the result's file would have held them.
 */
export const maxCatalogBytes = 256 * 1024;

/** Whether a result's rows are stored in the catalog instead of as a file. */
export function storedInCatalog(
  platform: Pick<Platform, 'env'>,
  contract: Pick<DatasetContract, 'privacy'>,
  rows: ReadonlyArray<Record<string, unknown>>,
): boolean {
  const limit = platform.env.MEDLAKE_RESULT_ROWS_IN_CATALOG;
  if (contract.privacy.airlock || limit === 0 || rows.length > limit) return false;
  // In bytes, as the catalog stores it: String.length counts UTF-16 code units, and a name in
  // two- or three-byte characters would pass at two or three times the bound.
  return Buffer.byteLength(JSON.stringify(rows)) <= maxCatalogBytes;
}

/** The rows of a result stored in the catalog; undefined for a result stored as a file. */
export async function storedResultRows(
  platform: Platform,
  job: { id: string },
): Promise<Array<Record<string, unknown>> | undefined> {
  return queryJobsRepository(platform.catalog.db).storedRows(job.id);
}

/**
 * A Parquet file of a finished result for the engine to read (an export, its output check):
 * the result's own file, or, for a result stored in the catalog, a file written from its rows
 * for this use and deleted by `done`.
 */
export async function resultFileOf(
  platform: Platform,
  job: { id: string; resultKey: string },
  summary: Pick<QuerySummary, 'columns'>,
): Promise<{ location: string; done(): Promise<void> }> {
  const rows = await storedResultRows(platform, job);
  if (!rows) return { location: platform.store.locate(job.resultKey), done: async () => {} };
  const key = `results/${job.id}/stored-${randomUUID()}.parquet`;
  const location = await platform.store.locateForWrite(key);
  const columns = summary.columns as readonly ResultColumn[];
  const done = () => platform.store.delete(key).catch(() => undefined);
  try {
    await platform.engine.writeRowsAsParquet(
      rows,
      [...columns, { name: 'suppressed', type: 'boolean' }],
      location,
    );
  } catch (error) {
    // A write that fails may have left part (or all) of the copy: the rows never stay in the
    // store outside the catalog, where nothing would delete them.
    await done();
    throw error;
  }
  return { location, done };
}
