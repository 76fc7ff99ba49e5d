import type { Env } from '../env.ts';
import { createDuckDbEngine, type DuckDbEngineOptions } from './duckdb/duckdb-engine.ts';
import { createDuckDbIngestEngine, type DuckDbIngestOptions } from './duckdb/duckdb-ingest.ts';
import { createSparkEngine } from './spark/spark-engine.ts';
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
  kind: Env['MEDLAKE_ENGINE'],
  options: DuckDbIngestOptions,
): IngestEngine {
  switch (kind) {
    case 'duckdb':
      return createDuckDbIngestEngine(options);
    case 'spark':
      // Until ingestion runs on Spark too (issue 7), a Spark deployment ingests with DuckDB in
      // the medlake process, into the same lake Spark then reads.
      return createDuckDbIngestEngine(options);
  }
}
