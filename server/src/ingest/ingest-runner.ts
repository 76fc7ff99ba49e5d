import type { SqlDialect } from '../engines/sql-dialect.ts';
import type { SourceColumn } from './ingest-plan.ts';

/**
 * What an engine gives the ingest pipeline (ingest-pipeline.ts): SQL in its dialect, and a
 * runner of that SQL in a session of its own. The pipeline writes every rule of ingestion
 * once; an engine only runs statements, reads the landed CSV and registers pseudonyms.
 */

/** What ingest writes beyond a query's SQL. Values are SQL text unless named otherwise. */
export interface IngestDialect extends SqlDialect {
  /** The engine's type for a contract's source type, or a lake column's type. */
  typeName(type: string): string;
  /** A string constant of medlake's own (a pattern, a ZIP prefix): never an uploaded value. */
  literal(value: string): string;
  /** How this engine reads the landed CSV, with the problems of reading it. */
  readCsv(read: CsvRead): CsvReader;
  /** The lower-case words (runs of ASCII letters and digits) of a text, one row each. */
  words(text: string): string;
  /** Whether the regular expression (a constant; RE2 and Java alike) matches in the text. */
  matches(text: string, pattern: string): string;
  /** Whether the regular expression matches the whole text. */
  matchesAll(text: string, pattern: string): string;
  /** Whether the expression is one of these constants. */
  isOneOf(expression: string, values: readonly string[]): string;
  /** The distinct values of an expression in a group, as an array (an aggregate). */
  collectSet(expression: string): string;
  arrayContains(array: string, value: string): string;
  /** SHA-256 of a text, as 64 lower-case hex digits. */
  sha256Hex(expression: string): string;
  /** Whole years from one date to another (a birthday on 29 February falls on the 28th). */
  completeYears(from: string, to: string): string;
  /** The 25th, 50th and 75th percentiles, interpolated between the nearest values. */
  quartiles(expression: string): string;
  /** Parquet files, by a glob of their location, as a FROM clause. */
  parquetFiles(glob: string): string;
  /** The same, with each row's file name (without its folder) as a `file_name` column. */
  parquetFilesNamed(glob: string): string;
  /**
   * What the footers of Parquet files (by a glob) record of each column, without reading a
   * row: one row per column, its `name`, rows (`row_count`) and empty values (`nulls`), and
   * `unrecorded`, the row groups whose footer has no count of empty values. Absent where the
   * engine cannot read footers in SQL; the figures are then counted from the rows.
   */
  parquetColumnCounts?(glob: string): string;
  /**
   * A query of `record` and the named values of every case that holds for a row of `from`:
   * one row per row and case. The values' names are the same in every case.
   */
  rowsWhere(from: string, cases: ReadonlyArray<{ when: string; values: RowValues }>): string;
}

export type RowValues = ReadonlyArray<readonly [name: string, sql: string]>;

/** The landed CSV and what to keep of its rows. */
export type CsvRead = {
  /** Where the engine reads the file: a path, or an S3 URL. */
  location: string;
  delimiter: string;
  /** Whether a quoted value may hold a line break (the contract's `multiLineValues`). */
  multiLineValues: boolean;
  sizeBytes: number;
  /** The file's columns, in order. */
  columns: readonly SourceColumn[];
  /** The columns kept, typed by the contract, each under its alias. */
  kept: readonly SourceColumn[];
  /** SQL of further columns computed from the row's values as read (named with AS). */
  flags: readonly string[];
};

/** The SQL that reads a CSV: the pipeline keeps `staged` and names the others as views. */
export type CsvReader = {
  /** Statements run first (on Spark, the file as a view and the shuffles' size). */
  setup: string[];
  /** The rows read, with the kept columns and the flags. */
  staged: string;
  /** Tables kept after `staged` and before the views, which read them. */
  tables?: ReadonlyArray<{ name: string; query: string }>;
  /**
   * Whether `record` is the line a record is on, counted from the header's 1: then problems by
   * record are located without reading the file again.
   */
  recordsAreLines?: boolean;
  /**
   * The rows of `staged` read without a problem, with `record`, their number in file order.
   * Records read with a problem are numbered too, unless their problems have a line instead.
   */
  accepted: string;
  /**
   * The problems of reading: `record` or `line` (BIGINT, the other NULL), `position` (the
   * column, NULL for the whole line) and `code`, an ingest problem code.
   */
  problems: string;
};

/** Patient pseudonyms and date shifts from the vault, for one batch of patient ids. */
export type PseudonymBatch = ReadonlyMap<string, { pseudonym: string; shiftDays: number }>;

/** One ingest's session on an engine. */
export interface IngestRunner {
  readonly dialect: IngestDialect;
  /** Whether a statement's progress is a share of its rows, so that rows can be estimated. */
  readonly progressOfRows: boolean;
  run(statement: string): Promise<void>;
  rows<T = Record<string, unknown>>(query: string): Promise<T[]>;
  /** Keeps a query's rows as a table of the session; the later statements read it by name. */
  table(name: string, query: string, onPercent?: (percent: number) => void): Promise<void>;
  view(name: string, query: string): Promise<void>;
  /** A secret (a key) as SQL that stands for it: bound, never in a statement's text. */
  secret(value: string): Promise<string>;
  /** Whether an error while reading means the file cannot be read as CSV at all. */
  isUnreadable(error: unknown): boolean;
  /** A one-column query's values, held by the engine and read a slice at a time. */
  valuesOf(query: string): Promise<ValueSlices>;
  /** Makes `patient_map (real, pseudonym, shift_days)` of the batches. */
  registerPseudonyms(batches: AsyncIterable<PseudonymBatch>): Promise<void>;
  /**
   * Writes a query's rows as one Parquet file at a location of the store, where the engine
   * can; the release's dictionary pairs are then written by the publish instead.
   */
  writeParquet?(query: string, location: string): Promise<void>;
  /**
   * Writes the query's rows as the release's Parquet files, sorted as the layout says, in
   * order from the first file to the last; returns their names, in that order.
   */
  writeRelease(
    query: string,
    layout: ReleaseLayout,
    onPercent: (percent: number) => void,
  ): Promise<string[]>;
}

/** What an engine needs to lay out a release's files (ingest/lake-layout.ts). */
export type ReleaseLayout = {
  /** Rows read into the staged table, where the engine counts them. */
  stagedRows: number | null;
  /** Rows the query gives. */
  rows: number;
  /** Columns the rows are sorted by (SQL, quoted), the first most significant. */
  orderBy: readonly string[];
  /** Columns worth a Parquet bloom filter where the engine writes them (names, unquoted). */
  bloomFilters: readonly string[];
  /**
   * The sort columns alone, named as in `orderBy`, of every row the query gives (and perhaps
   * of rows it leaves out): what an engine that cuts a release into ranges counts, without
   * computing every de-identified column of every row to do so.
   */
  sortKeys?: string;
};

export type ValueSlices = {
  total: number;
  slice(from: number, count: number): Promise<string[]>;
  close(): Promise<void>;
};
