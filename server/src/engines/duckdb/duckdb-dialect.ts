import type { SqlDialect } from '../sql-dialect.ts';
import { quoteIdentifier, quoteLiteral } from './duckdb-sql.ts';

export const duckDbDialect: SqlDialect = {
  placeholder: (index) => `$${index}`,
  quoteIdentifier,
  // File paths come from the catalog, never from a query spec. Partition values stay text:
  // DuckDB would otherwise guess types from them.
  scanParquet: (files) =>
    `read_parquet([${files.map(quoteLiteral).join(', ')}], hive_partitioning = true, hive_types_autocast = false, union_by_name = true)`,
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
  histogram: (expression) => `map_entries(histogram(${expression}))`,
};

function partitionBy(expressions: readonly string[]): string {
  return expressions.length > 0 ? `PARTITION BY ${expressions.join(', ')}` : '';
}
