import type { Env } from '../env.ts';
import { createDuckDbEngine, type DuckDbEngineOptions } from './duckdb/duckdb-engine.ts';
import { createDuckDbIngestEngine, type DuckDbIngestOptions } from './duckdb/duckdb-ingest.ts';
import type { IngestEngine, QueryEngine } from './types.ts';

/** Creates the engine the configuration names. Spark joins here as a second case. */
export async function createEngine(
  kind: Env['MEDLAKE_ENGINE'],
  options: DuckDbEngineOptions,
): Promise<QueryEngine> {
  switch (kind) {
    case 'duckdb':
      return createDuckDbEngine(options);
  }
}

/** Creates the ingest side of the configured engine, with its own locked-down instance. */
export function createIngestEngine(
  kind: Env['MEDLAKE_ENGINE'],
  options: DuckDbIngestOptions,
): IngestEngine {
  switch (kind) {
    case 'duckdb':
      return createDuckDbIngestEngine(options);
  }
}
