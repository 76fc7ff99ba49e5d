import type { SqlDialect } from '../sql-dialect.ts';
import { scanOf } from './spark-scans.ts';

/**
 * Spark SQL. Parameters are named markers (`:p1`), bound by the server from the statement's
 * named arguments. The lake's partition folders (hospital=, month=, release=) become columns
 * from each file's path, as DuckDB's hive partitioning makes them (spark-scans.ts).
 */
export const sparkDialect: SqlDialect = {
  placeholder: (index) => `:p${index}`,
  quoteIdentifier: (name) => `\`${name.replaceAll('`', '``')}\``,
  // Bound by the engine to the files one by one (spark-scans.ts), so that one missing fails.
  scanParquet: scanOf,
  timeBucket: (expression, bucket) => `CAST(date_trunc('${bucket}', ${expression}) AS DATE)`,
  startsWith: (expression, prefix) => `startswith(${expression}, ${prefix})`,
  keyedPseudonym: (expression, key) =>
    `concat('p_', substr(sha2(concat(${key}, ${expression}), 256), 1, 20))`,
  keyedInteger: (expression, key) =>
    `CAST(conv(substr(sha2(concat(${key}, ${expression}), 256), 1, 8), 16, 10) AS BIGINT)`,
  addDays: (expression, days, type) =>
    type === 'date'
      ? `date_add(${expression}, CAST(${days} AS INT))`
      : `(${expression} + make_dt_interval(CAST(${days} AS INT)))`,
  castToDate: (expression) => `CAST(${expression} AS DATE)`,
  castToTimestamp: (expression) => `CAST(${expression} AS TIMESTAMP)`,
  castToText: (expression) => `CAST(${expression} AS STRING)`,
  // Fifteen significant digits as text (%.14e), read back as the nearest double. Spark formats
  // NULL as the text 'null', which an ANSI cast refuses, so NULL is kept apart.
  withoutBinaryNoise: (expression) =>
    `CAST(CASE WHEN ${expression} IS NOT NULL THEN format_string('%.14e', ${expression}) END AS DOUBLE)`,
  dayAfter: (expression) => `CAST(date_add(CAST(${expression} AS DATE), 1) AS TIMESTAMP)`,
  countDistinct: (expression) => `count(DISTINCT ${expression})`,
  // Spark has no DISTINCT window aggregates; the set of a partition's values is the same count.
  countDistinctOver: (expression, partition) =>
    `size(collect_set(${expression}) OVER (${partition.length > 0 ? `PARTITION BY ${partition.join(', ')}` : ''}))`,
  mean: (expression) => `avg(${expression})`,
  stddev: (expression) => `stddev_samp(${expression})`,
  // Spark's percentile is exact and interpolates between the two nearest values, as DuckDB's
  // quantile_cont does.
  percentile: (expression, fraction) => `percentile(${expression}, ${fraction})`,
  // An array of fractions gives them all from one aggregate (Spark merges identical ones).
  percentileOf: (expression, fractions, index) =>
    `percentile(${expression}, array(${fractions.join(', ')}))[${index}]`,
  // The count of each distinct value, as {key, value} entries sorted by key. Exact, like
  // DuckDB's histogram; it holds each group's values in memory while counting them, which
  // suits the bins of a cohort's measurements (a two-level aggregate would scale further).
  histogram: (expression) =>
    `transform(array_sort(array_distinct(collect_list(${expression}))), k -> named_struct('key', k, 'value', size(filter(collect_list(${expression}), v -> v = k))))`,
};
