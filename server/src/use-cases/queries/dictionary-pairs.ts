import { randomUUID } from 'node:crypto';
import type { DatasetContract } from '@medlake/shared';
import type { QueryEngine } from '../../engines/types.ts';
import { releaseFilesGlob, releaseFolder } from '../../ingest/lake-keys.ts';
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
  releaseLocations: readonly string[],
): PairsSource | undefined {
  const columns = pairColumns(engine.dialect, contract);
  if (!columns) return undefined;
  return {
    from: engine.dialect.scanParquet(releaseLocations.map(releaseFilesGlob)),
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
 * rows: one aggregate over one month, for a release whose ingest did not write it. Returns false for a contract without a code column (no figures to count).
 */
export async function writeDictionaryPairs(
  engine: QueryEngine,
  store: ObjectStore,
  contract: DatasetContract,
  releaseFolder: string,
): Promise<boolean> {
  const rows = rowsSource(engine, contract, [store.locate(releaseFolder)]);
  if (!rows) return false;
  const key = dictionaryPairsKey(releaseFolder);
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
