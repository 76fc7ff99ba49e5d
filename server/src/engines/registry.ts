import { bytesOf, type Env } from '../env.ts';
import type { ObjectStore } from '../storage/object-store.ts';
import { createDuckDbEngine, type DuckDbEngineOptions } from './duckdb/duckdb-engine.ts';
import { createDuckDbIngestEngine, type DuckDbIngestOptions } from './duckdb/duckdb-ingest.ts';
import { createSparkEngine } from './spark/spark-engine.ts';
import { createSparkIngestEngine } from './spark/spark-ingest.ts';
import type { IngestEngine } from '../ingest/ingest-types.ts';
import type { QueryEngine } from './types.ts';

type EngineEnv = Pick<
  Env,
  'MEDLAKE_ENGINE' | 'SPARK_CONNECT_URL' | 'MEDLAKE_DUCKDB_EXTENSIONS' | 'MEDLAKE_SPARK_SPLIT_SIZE'
>;

function withExtensions<T extends object>(env: EngineEnv, options: T): T {
  const directory = env.MEDLAKE_DUCKDB_EXTENSIONS;
  return directory ? { ...options, extensionDirectory: directory } : options;
}

/** Creates the query engine the configuration names. */
export async function createEngine(
  env: EngineEnv,
  options: DuckDbEngineOptions,
  store: ObjectStore,
): Promise<QueryEngine> {
  switch (env.MEDLAKE_ENGINE) {
    case 'duckdb':
      return createDuckDbEngine(withExtensions(env, options));
    case 'spark':
      // loadEnv has made sure the URL is there.
      return createSparkEngine({ url: env.SPARK_CONNECT_URL!, store });
  }
}

/** Creates the ingest side of the configured engine, with its own locked-down instance. */
export function createIngestEngine(env: EngineEnv, options: DuckDbIngestOptions): IngestEngine {
  const sparkUrl = env.SPARK_CONNECT_URL;
  switch (env.MEDLAKE_ENGINE) {
    case 'duckdb':
      return createDuckDbIngestEngine(withExtensions(env, options));
    case 'spark':
      return createSparkIngestEngine({
        url: sparkUrl!,
        splitBytes: bytesOf(env.MEDLAKE_SPARK_SPLIT_SIZE),
      });
  }
}
