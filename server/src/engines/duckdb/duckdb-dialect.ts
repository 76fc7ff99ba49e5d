import { releaseFileName, releaseFilesGlob } from '../../ingest/lake-keys.ts';
import type { ScanFiles, SqlDialect } from '../sql-dialect.ts';
import { quoteIdentifier, quoteLiteral } from './duckdb-sql.ts';

export const duckDbDialect: SqlDialect = {
  placeholder: (index) => `$${index}`,
  quoteIdentifier,
  scanParquet,
  timeBucket: (expression, bucket) => `CAST(date_trunc('${bucket}', ${expression}) AS DATE)`,
  startsWith: (expression, prefix) => `starts_with(${expression}, ${prefix})`,
  keyedPseudonym: (expression, key) => `'p_' || substr(sha256(${key} || ${expression}), 1, 20)`,
  keyedInteger: (expression, key) =>
    `CAST(('0x' || substr(sha256(${key} || ${expression}), 1, 8)) AS BIGINT)`,
  addDays: (expression, days, type) =>
    type === 'date'
      ? `(${expression} + CAST(${days} AS INTEGER))`
      : `(${expression} + to_days(CAST(${days} AS INTEGER)))`,
  castToDate: (expression) => `CAST(${expression} AS DATE)`,
  castToTimestamp: (expression) => `CAST(${expression} AS TIMESTAMP)`,
  castToText: (expression) => `CAST(${expression} AS VARCHAR)`,
  // Fifteen significant digits as text (%.14e), read back as the nearest double.
  withoutBinaryNoise: (expression) => `CAST(printf('%.14e', ${expression}) AS DOUBLE)`,
  dayAfter: (expression) => `(CAST(${expression} AS DATE) + INTERVAL 1 DAY)`,
  countDistinct: (expression) => `count(DISTINCT ${expression})`,
  countDistinctOver: (expression, partition) =>
    `count(DISTINCT ${expression}) OVER (${partitionBy(partition)})`,
  mean: (expression) => `avg(${expression})`,
  stddev: (expression) => `stddev_samp(${expression})`,
  percentile: (expression, fraction) => `quantile_cont(${expression}, ${fraction})`,
  // A list of fractions keeps one state per group instead of one per percentile; DuckDB's
  // binder merges the identical aggregates, and each element interpolates as quantile_cont does.
  percentileOf: (expression, fractions, index) =>
    `quantile_cont(${expression}, [${fractions.join(', ')}])[${index + 1}]`,
  histogram: (expression) => `map_entries(histogram(${expression}))`,
};

function partitionBy(expressions: readonly string[]): string {
  return expressions.length > 0 ? `PARTITION BY ${expressions.join(', ')}` : '';
}

/** What a scan fails with when a release's folder does not hold the files the catalog lists. */
export const missingReleaseFile = 'medlake: a release file the catalog lists is missing';

/**
 * File paths come from the catalog, never from a query spec. Partition values stay text: DuckDB
 * would otherwise guess types from them. A release read whole comes as its folder and its count
 * of files. Named one by one, DuckDB fails a statement whose file is missing, but opens each on
 * S3 with a HEAD request, every query; a folder's glob is one listing, but passes over a lost
 * file. A release of more than two files is therefore read as its folder's glob, with a guard
 * that counts what the globs match (a second listing per release) and fails the statement
 * unless it is the catalog's count; smaller ones by name (npm run bench:scan-requests). DuckDB
 * still pushes filters and file pruning into the scan past the guard.
 */
function scanParquet(files: readonly ScanFiles[]): string {
  const named = files.flatMap((file) =>
    typeof file === 'string'
      ? [file]
      : file.files <= 2
        ? Array.from(
            { length: file.files },
            (_, index) => `${file.folder}/${releaseFileName(index)}`,
          )
        : [],
  );
  const folders = files.filter(
    (file): file is { folder: string; files: number } => typeof file !== 'string' && file.files > 2,
  );
  const globs = folders.map((folder) => releaseFilesGlob(folder.folder));
  const scan = `read_parquet([${[...named, ...globs].map(quoteLiteral).join(', ')}], hive_partitioning = true, hive_types_autocast = false, union_by_name = true)`;
  if (folders.length === 0) return scan;
  const expected = folders.reduce((sum, folder) => sum + folder.files, 0);
  const guard = `(SELECT CASE WHEN count(*) = ${expected} THEN true ELSE error(${quoteLiteral(missingReleaseFile)}) END FROM glob([${globs.map(quoteLiteral).join(', ')}]))`;
  return `(SELECT * FROM ${scan} WHERE ${guard})`;
}
