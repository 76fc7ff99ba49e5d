import { randomUUID } from 'node:crypto';
import { lakeColumns, type DatasetContract } from '@medlake/shared';
import type { QueryEngine } from '../../engines/types.ts';
import { releaseFilesGlob, releaseFolder } from '../../ingest/lake-keys.ts';
import type { ObjectStore } from '../../storage/object-store.ts';

/**
 * A release's dictionary pairs: its distinct (code, patient) pairs, each with its rows and the
 * least label and unit among them, in one Parquet file beside the release's own. The dictionary's
 * figures of a hospital are counted from these rather than from every row of every month: a
 * pair stands for all the rows one patient has of one code in the month, and the file has five
 * narrow columns where the release has the contract's all. It holds what the lake holds
 * (codes and pseudonyms), nothing more.
 *
 * Why a folder of its own inside the release's: queries read a release as the `*.parquet` files
 * directly in its folder, which this is not among; and the file is removed with its release's
 * folder when a publish fails, so that no pairs outlive the rows they were counted from.
 */
export function dictionaryPairsKey(releaseFolder: string): string {
  // Parquet, but not named *.parquet: a glob over the lake's Parquet files (an operator's own
  // SQL, bench:query's hand-written side) must find rows only.
  return `${releaseFolder}/dictionary/pairs.pq`;
}

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

/** The code, label and unit columns of a contract's lake, quoted; undefined without a code. */
function roleColumns(engine: QueryEngine, contract: DatasetContract) {
  const lake = lakeColumns(contract);
  const quoted = (role: string) => {
    const column = lake.find((candidate) => candidate.role === role);
    return column && engine.dialect.quoteIdentifier(column.name);
  };
  const code = quoted('code');
  if (!code) return undefined;
  const nothing = engine.dialect.castToText('NULL');
  return { code, label: quoted('code_label') ?? nothing, unit: quoted('unit') ?? nothing };
}

/** The figures' source over the releases' rows themselves: what a pairs file is written from. */
export function rowsSource(
  engine: QueryEngine,
  contract: DatasetContract,
  releaseLocations: readonly string[],
): PairsSource | undefined {
  const columns = roleColumns(engine, contract);
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
 * Writes a release's pairs file through the query engine, from its rows: one aggregate over
 * one month. Sorted by code and patient, so that the file compresses well and a reader can
 * skip by code. Returns false for a contract without a code column (no figures to count).
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
        sql: `SELECT ${rows.code} AS code, patient, count(*) AS row_count,
          min(${rows.label}) AS label, min(${rows.unit}) AS unit
          FROM ${rows.from} GROUP BY ${rows.code}, patient ORDER BY code, patient`,
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
