import type { LakeColumnType } from '@medlake/shared';
import type { SqlDialect } from './sql-dialect.ts';
import type { S3Access } from '../storage/object-store.ts';

export type EngineKind = 'duckdb' | 'spark';

/**
 * A query engine: the part that reads the Parquet lake. DuckDB in-process by default; Spark
 * Connect at scale. The query service talks to this interface only, so an engine is chosen by
 * configuration and nothing above it changes.
 */
export interface QueryEngine {
  /** Which implementation this is, as shown by the health report. */
  readonly kind: EngineKind;
  /** How this engine's SQL is written; the query compiler writes through it. */
  readonly dialect: SqlDialect;
  /** Runs a trivial statement; rejects when the engine cannot answer. */
  ping(): Promise<void>;
  /**
   * Runs a statement and returns its rows with JSON values (dates as ISO text, big integers as
   * text). For results known to be small, such as aggregates.
   */
  rows(statement: SqlStatement, options?: RunOptions): Promise<Array<Record<string, unknown>>>;
  /** Writes the statement's rows to a file where the object store locates it. */
  writeFile(
    statement: SqlStatement,
    target: string,
    format: 'parquet' | 'csv',
    options?: RunOptions,
  ): Promise<void>;
  /** Writes rows held in memory, with these column types, to Parquet: how disclosed aggregates are kept. */
  writeRowsAsParquet(
    rows: ReadonlyArray<Record<string, unknown>>,
    columns: ReadonlyArray<ParquetColumn>,
    target: string,
  ): Promise<void>;
  close(): Promise<void>;
}

/** A column of rows written to Parquet: its name, and a lake type or a histogram's list. */
export type ParquetColumn = { name: string; type: LakeColumnType | 'histogram' };

export type SqlStatement = { sql: string; params: readonly unknown[] };

export type RunOptions = {
  /** Aborting interrupts the statement; it then rejects with a CANCELLED-like error. */
  signal?: AbortSignal;
  /** Called now and then while the statement runs, with how far it got (0 to 100). */
  onProgress?: (percent: number) => void;
};

export type EngineOptions = {
  /**
   * The only directories the engine may read or write. For queries: the lake and results;
   * the landing zone and the vault are never among them.
   */
  allowedDirectories: string[];
  /** Where the engine may spill to disk. */
  tempDirectory: string;
  /**
   * The S3 store's endpoint and credentials, when the directories above are S3 locations. A
   * Spark cluster uses its own (its S3A settings) instead.
   */
  s3?: S3Access;
};
