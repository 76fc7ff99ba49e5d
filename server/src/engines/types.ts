/**
 * A query engine: the part that reads the Parquet lake. DuckDB in-process by default; Spark
 * Connect at scale. The query service talks to this interface only, so an engine is chosen by
 * configuration and nothing above it changes.
 */
export interface QueryEngine {
  /** Which implementation this is, as shown by the health report. */
  readonly kind: EngineKind;
  /** Runs a trivial statement; rejects when the engine cannot answer. */
  ping(): Promise<void>;
  close(): Promise<void>;
}

export type EngineKind = 'duckdb';

export type EngineOptions = {
  /**
   * The only directories the engine may read or write. The landing zone and the vault are
   * never among them.
   */
  allowedDirectories: string[];
  /** Where the engine may spill to disk. */
  tempDirectory: string;
};
