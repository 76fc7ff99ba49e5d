import type { Env } from '../env.ts';
import { createDuckDbEngine } from './duckdb/duckdb-engine.ts';
import type { EngineOptions, QueryEngine } from './types.ts';

/** Creates the engine the configuration names. Spark joins here as a second case. */
export async function createEngine(
  kind: Env['MEDLAKE_ENGINE'],
  options: EngineOptions,
): Promise<QueryEngine> {
  switch (kind) {
    case 'duckdb':
      return createDuckDbEngine(options);
  }
}
