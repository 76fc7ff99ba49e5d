import type { timeBuckets } from '@medlake/shared';

/**
 * What a scan reads: one file (or a result) by its location, or a release's folder, whose files
 * are part-0.parquet to part-(files − 1).parquet (ingest/lake-keys.ts).
 */
export type ScanFiles = string | { folder: string; files: number };

/**
 * What differs between the engines' SQL: the compiler writes every query through this, so that
 * one query spec compiles for DuckDB and for Spark. Values never pass through here as text;
 * the compiler hands in placeholders it made with `placeholder`.
 */
export interface SqlDialect {
  /** The placeholder for the n-th parameter (1-based). */
  placeholder(index: number): string;
  quoteIdentifier(name: string): string;
  /**
   * A table expression over these Parquet files, with hospital and month from their paths. A
   * release read whole comes as its folder and its number of files: the statement fails when
   * the folder does not hold exactly those (a file lost from the lake), never reads fewer.
   */
  scanParquet(files: readonly ScanFiles[]): string;
  /** A date or timestamp cut down to the start of its bucket, as a date. */
  timeBucket(expression: string, bucket: (typeof timeBuckets)[number]): string;
  startsWith(expression: string, prefix: string): string;
  castToDate(expression: string): string;
  castToTimestamp(expression: string): string;
  castToText(expression: string): string;
  /**
   * A double rounded to 15 significant digits, as a double: the one nearest that decimal, whose
   * shortest text carries no binary noise (128.20000000000002 becomes 128.2). Exports write
   * their numbers through this; NULL stays NULL, NaN and infinities stay themselves.
   */
  withoutBinaryNoise(expression: string): string;
  /** The day after a date, as a timestamp: the exclusive end of a date-only upper bound. */
  dayAfter(expression: string): string;
  countDistinct(expression: string): string;
  /** The number of distinct values of the expression in each row's partition (a window). */
  countDistinctOver(expression: string, partition: readonly string[]): string;
  mean(expression: string): string;
  stddev(expression: string): string;
  /** A continuous percentile; `fraction` is a placeholder. */
  percentile(expression: string, fraction: string): string;
  /**
   * The `index`-th (0-based) of several continuous percentiles of one expression, each the
   * same figure `percentile` gives: written identically but for the index, so that the engine
   * computes them as one aggregate that holds and sorts the values once (`fractions` are
   * placeholders).
   */
  percentileOf(expression: string, fractions: readonly string[], index: number): string;
  /** The count of rows per value, as a list of {key, value} pairs. */
  histogram(expression: string): string;
  /**
   * A pseudonym as one holder sees it: p_ and the first 20 hex digits of SHA-256 over the holder's key
   * (a placeholder) followed by the pseudonym; privacy/privacy-secrets.ts computes the same.
   */
  keyedPseudonym(expression: string, key: string): string;
  /**
   * The first 32 bits of SHA-256 over a key (a placeholder) followed by the expression, as a
   * non-negative integer: a holder's own draw per patient (privacy/privacy-secrets.ts computes
   * the same).
   */
  keyedInteger(expression: string, key: string): string;
  /** A date or timestamp moved by a whole number of days (an integer expression). */
  addDays(expression: string, days: string, type: 'date' | 'timestamp'): string;
}
