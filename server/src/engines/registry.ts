import type { Env } from '../env.ts';
import { createDuckDbEngine, type DuckDbEngineOptions } from './duckdb/duckdb-engine.ts';
import { createDuckDbIngestEngine, type DuckDbIngestOptions } from './duckdb/duckdb-ingest.ts';
import { createSparkEngine } from './spark/spark-engine.ts';
import { createSparkIngestEngine } from './spark/spark-ingest.ts';
import type { IngestEngine, QueryEngine } from './types.ts';

/** Creates the query engine the configuration names. */
export async function createEngine(
  env: Pick<Env, 'MEDLAKE_ENGINE' | 'SPARK_CONNECT_URL'>,
  options: DuckDbEngineOptions,
): Promise<QueryEngine> {
  switch (env.MEDLAKE_ENGINE) {
    case 'duckdb':
      return createDuckDbEngine(options);
    case 'spark':
      // loadEnv has made sure the URL is there.
      return createSparkEngine({ url: env.SPARK_CONNECT_URL! });
  }
}

/** Creates the ingest side of the configured engine, with its own locked-down instance. */
export function createIngestEngine(
  env: Pick<Env, 'MEDLAKE_ENGINE' | 'SPARK_CONNECT_URL'>,
  options: DuckDbIngestOptions,
): IngestEngine {
  const sparkUrl = env.SPARK_CONNECT_URL;
  switch (env.MEDLAKE_ENGINE) {
    case 'duckdb':
      return createDuckDbIngestEngine(options);
    case 'spark':
      return createSparkIngestEngine({ url: sparkUrl! });
  }
}
