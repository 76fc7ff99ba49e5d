import { existsSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import path from 'node:path';
import type { ReleaseLayout } from '../../ingest/ingest-runner.ts';
import type { IngestRequest } from '../../ingest/ingest-types.ts';
import { releaseFileName, releaseFilesIn } from '../../ingest/lake-keys.ts';
import { releaseFileCount, rowGroupRows } from '../../ingest/lake-layout.ts';
import {
  cutFractions,
  groupKeys,
  rangeCondition,
  splitKey,
  type KeyCount,
  type SortRange,
} from '../../ingest/sort-ranges.ts';
import { quoteLiteral } from './duckdb-sql.ts';

/**
 * What the ingest may use of DuckDB's memory, by how many threads at once, and where on local
 * disk it may keep work files (inside its spill directory, deleted with it).
 */
export type IngestMemory = { limitBytes: number; threads: number; scratch: string };

/** The statements a release is written with, in the ingest's DuckDB session. */
export type ReleaseSession = {
  run(sql: string, onPercent?: (percent: number) => void): Promise<void>;
  rows<T>(sql: string): Promise<T[]>;
};

/**
 * How many times a range's CSV bytes DuckDB's sort and ordered Parquet write need of memory:
 * measured, a range of 26 MB of CSV sorted and wrote within 128 MB beside the staged upload,
 * and one of 52 MB ran out. An eighth of the limit leaves room for the session's other tables.
 */
const sortMemoryPerCsvByte = 8;

/**
 * Writes a release's rows sorted as the layout says, within the ingest's memory limit.
 * A release that one sort can hold is one statement. A larger one is cut into ranges of its
 * sort key (ingest/sort-ranges.ts), written once unsorted into a folder per range, then each
 * range sorted alone into a file of its own, so that the files together are in order and each
 * file holds few codes.
 */
export async function writeSortedRelease(
  session: ReleaseSession,
  request: IngestRequest,
  memory: IngestMemory,
  query: string,
  layout: ReleaseLayout,
  onPercent: (percent: number) => void,
): Promise<string[]> {
  const { store, folder } = request.target;
  const bytesPerRow = Math.max(request.sourceBytes / Math.max(layout.stagedRows ?? 0, 1), 1);
  // Each writing thread holds its current row group in memory, uncompressed, beside the
  // sort: together they stay within a quarter of the memory limit.
  const fitting = memory.limitBytes / (4 * memory.threads * bytesPerRow);
  const options = `FORMAT parquet, COMPRESSION snappy, ROW_GROUP_SIZE ${rowGroupRows(layout.rows, fitting)}`;
  const file = async (index: number) =>
    quoteLiteral(await store.locateForWrite(`${folder}/${releaseFileName(index)}`));
  const [first, second] = layout.orderBy;
  if (!first) {
    // Nothing to sort by: written in parallel, in files of about the configured size.
    await session.run(
      `COPY (${query}) TO ${quoteLiteral(await store.locateForWrite(folder))} (${options},
        FILENAME_PATTERN 'part-{i}', FILE_SIZE_BYTES ${Math.round(request.fileBytes)},
        PRESERVE_ORDER false)`,
      onPercent,
    );
    return releaseFilesIn(store, folder);
  }
  // Empty values first, as Spark sorts them, so that both engines write the same order.
  const order = `ORDER BY ${layout.orderBy.map((column) => `${column} NULLS FIRST`).join(', ')}`;
  const sortable = memory.limitBytes / (sortMemoryPerCsvByte * bytesPerRow);
  const perFile = layout.rows / releaseFileCount(request.sourceBytes, request.fileBytes);
  const budget = Math.max(1, Math.floor(Math.min(sortable, perFile)));
  if (layout.rows <= budget) {
    // DuckDB writes its code column's bloom filter by itself (it is dictionary-encoded).
    await session.run(
      `COPY (SELECT * FROM (${query}) AS r ${order}) TO ${await file(0)} (${options})`,
      onPercent,
    );
    return releaseFilesIn(store, folder);
  }

  // One pass of the query writes each row into its range's folder, unsorted (Parquet, on
  // local disk); then each range is read back alone, sorted, and written as its file. Reading
  // a range reads only its rows, where a filter over one table would read every row per range.
  const columns = { first, ...(second ? { second } : {}) };
  const keys = layout.sortKeys ?? query;
  const types = await typesOf(session, keys, columns);
  const ranges = await sortRanges(session, keys, columns, types, budget);
  const literal = (column: 'first' | 'second', value: string) =>
    `CAST(${quoteLiteral(value)} AS ${types[column]})`;
  const whichRange = `CASE ${ranges
    .map((range, index) => `WHEN ${rangeCondition(range, columns, literal)} THEN ${index}`)
    .join(' ')} END`;
  const folderOf = (index: number) => path.join(memory.scratch, `release_range=${index}`);
  // Every range's file is open at once, each holding a row group in memory: together they
  // hold what one file's group may (a measured 23 ranges of 17,000-row groups ran out at 128 MB).
  const scratchGroupRows = Math.max(1024, Math.floor(fitting / ranges.length));
  await rm(memory.scratch, { recursive: true, force: true });
  try {
    // The scratch files are read once, from local disk: written plain, without compression or
    // dictionaries, the pass took 10-17 % less CPU (1 GB month), for twice the scratch on disk.
    await session.run(
      `COPY (SELECT *, ${whichRange} AS release_range FROM (${query}) AS r)
      TO ${quoteLiteral(memory.scratch)} (FORMAT parquet, COMPRESSION uncompressed,
        DICTIONARY_SIZE_LIMIT 1, PARTITION_BY (release_range), ROW_GROUP_SIZE ${scratchGroupRows})`,
      (percent) => onPercent(percent * 0.6),
    );
    let written = 0;
    let files = 0;
    for (const [index, range] of ranges.entries()) {
      // A range may be empty (a cut between equal dates): it has no folder and no file.
      if (!existsSync(folderOf(index))) continue;
      const rows = `read_parquet(${quoteLiteral(`${folderOf(index)}/*.parquet`)}, hive_partitioning = false)`;
      await session.run(
        `COPY (SELECT * FROM ${rows} ${order}) TO ${await file(files)} (${options})`,
      );
      files += 1;
      written += range.rows;
      onPercent(60 + (40 * Math.min(written, layout.rows)) / Math.max(layout.rows, 1));
    }
  } finally {
    await rm(memory.scratch, { recursive: true, force: true });
  }
  return releaseFilesIn(store, folder);
}

/**
 * The ranges of the query's sort key that each hold at most `budget` rows, in order. The query
 * may give more rows than are written (ReleaseLayout.sortKeys): a range then holds fewer.
 */
async function sortRanges(
  session: ReleaseSession,
  query: string,
  columns: { first: string; second?: string },
  types: SortTypes,
  budget: number,
): Promise<SortRange[]> {
  const { first, second } = columns;
  // Grouped and ordered by the column itself, not its text: '10' sorts before '9' as text.
  // DuckDB computes only the code (and the joins that decide which rows there are).
  const counts = (
    await session.rows<{ key: string | null; n: bigint | number }>(
      `SELECT CAST(${first} AS VARCHAR) AS key, count(*) AS n FROM (${query}) AS r
      GROUP BY ${first} ORDER BY ${first} NULLS FIRST`,
    )
  ).map((row): KeyCount => ({ key: row.key, rows: Number(row.n) }));
  const ranges: SortRange[] = [];
  for (const { split, ...range } of groupKeys(counts, budget)) {
    if (!split || !second) {
      ranges.push(range);
      continue;
    }
    // One code with more rows than a range may hold: cut by event date, at its quantiles.
    const key =
      range.from === null
        ? `${first} IS NULL`
        : `${first} = CAST(${quoteLiteral(range.from)} AS ${types.first})`;
    const fractions = cutFractions(range.rows, budget);
    const cuts = await session.rows<{ cut: string }>(
      `SELECT CAST(c AS VARCHAR) AS cut FROM (
        SELECT DISTINCT unnest(q) AS c FROM (
          SELECT quantile_disc(${second}, [${fractions.join(', ')}]) AS q
          FROM (${query}) AS r WHERE ${key}) quantiles) cuts
      WHERE c IS NOT NULL ORDER BY c`,
    );
    ranges.push(
      ...splitKey(
        range,
        cuts.map((row) => row.cut),
      ),
    );
  }
  return ranges;
}

/** The SQL types of the two sort columns (VARCHAR for a second column there is not). */
type SortTypes = { first: string; second: string };

/**
 * The sort columns' types, as the query's description gives them: DuckDB binds the query
 * without running it, where reading a row of it built the join with the pseudonyms first
 * (0.3 s of CPU on the 1 GB month).
 */
async function typesOf(
  session: ReleaseSession,
  query: string,
  columns: { first: string; second?: string },
): Promise<SortTypes> {
  const described = await session.rows<{ column_name: string; column_type: string }>(
    `DESCRIBE SELECT ${columns.first}${columns.second ? `, ${columns.second}` : ''} FROM (${query}) AS r`,
  );
  return {
    first: described[0]?.column_type ?? 'VARCHAR',
    second: (columns.second && described[1]?.column_type) || 'VARCHAR',
  };
}
