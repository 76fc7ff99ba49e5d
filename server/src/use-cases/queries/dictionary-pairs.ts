import { randomUUID } from 'node:crypto';
import type { DatasetContract } from '@medlake/shared';
import type { ScanFiles } from '../../engines/sql-dialect.ts';
import type { QueryEngine } from '../../engines/types.ts';
import { releaseFileLocations, releaseFolder } from '../../ingest/lake-keys.ts';
import { dictionaryPairsKey, pairColumns, pairsQuery } from '../../ingest/release-pairs.ts';
import type { ObjectStore } from '../../storage/object-store.ts';

/** The pairs file of a published release, from its catalog record. */
export function releasePairsKey(release: {
  id: string;
  datasetId: string;
  hospitalId: string;
  month: string;
}): string {
  return dictionaryPairsKey(releaseFolder({ ...release, releaseId: release.id }));
}

/** The columns a pairs file has (or a count over a release's rows gives, named alike). */
export type PairsSource = {
  /** The relation the figures are counted over, with a `hospital` and a `patient` column. */
  from: string;
  code: string;
  label: string;
  unit: string;
  /** How a group's rows are counted: pairs carry their rows, a release's rows are counted. */
  rowCount: string;
};

/** The figures' source over the releases' rows themselves: what a pairs file is written from. */
export function rowsSource(
  engine: QueryEngine,
  contract: DatasetContract,
  releaseFiles: readonly ScanFiles[],
): PairsSource | undefined {
  const columns = pairColumns(engine.dialect, contract);
  if (!columns) return undefined;
  return {
    from: engine.dialect.scanParquet(releaseFiles),
    ...columns,
    rowCount: 'count(*)',
  };
}

/** The figures' source over releases' pairs files (their locations in the store). */
export function pairsSource(engine: QueryEngine, pairsLocations: readonly string[]): PairsSource {
  return {
    from: engine.dialect.scanParquet(pairsLocations),
    code: 'code',
    label: 'label',
    unit: 'unit',
    rowCount: 'sum(row_count)',
  };
}

/**
 * Writes a release's pairs file (ingest/release-pairs.ts) through the query engine, from its
 * rows: one aggregate over one month, for a release whose ingest did not write it. Returns false
 * for a contract without a code column (no figures to count). The rows are read as the files
 * the catalog lists, so that a lost one fails the count rather than shrinking it.
 */
export async function writeDictionaryPairs(
  engine: QueryEngine,
  store: ObjectStore,
  contract: DatasetContract,
  release: { folder: string; fileCount?: number | undefined },
): Promise<boolean> {
  const rows = rowsSource(engine, contract, releaseFileLocations(store, release));
  if (!rows) return false;
  const key = dictionaryPairsKey(release.folder);
  // Written under a name of its own, then moved into place: two counts that write the same
  // release's pairs at once (two requests after an upgrade) each replace the file whole, and a
  // count reading it never meets half a file.
  const staging = `${key}.${randomUUID()}`;
  try {
    await engine.writeFile(
      {
        sql: pairsQuery(rows.from, rows),
        params: [],
      },
      await store.locateForWrite(staging),
      'parquet',
    );
    await store.move(staging, key);
  } catch (error) {
    await store.delete(staging).catch(() => undefined);
    throw error;
  }
  return true;
}
