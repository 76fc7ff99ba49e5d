import type { StorageKind } from '../src/storage/object-store.ts';
import { testSparkUrl } from './spark.ts';

/** An engine and a store, as a deployment configures them. */
export type Deployment = {
  engineEnv: () => Record<string, string>;
  storage: StorageKind;
};

const duckdb = () => ({});
const spark = () => ({ MEDLAKE_ENGINE: 'spark', SPARK_CONNECT_URL: testSparkUrl() });

/**
 * Every deployment the ingestion and query suites run on, named for `describe.each`: each
 * engine with the lake on local disk and on S3.
 */
export const deployments: Array<[string, Deployment]> = [
  ['DuckDB', { engineEnv: duckdb, storage: 'local' }],
  ['Spark', { engineEnv: spark, storage: 'local' }],
  ['DuckDB, lake on S3', { engineEnv: duckdb, storage: 's3' }],
  ['Spark, lake on S3', { engineEnv: spark, storage: 's3' }],
];
