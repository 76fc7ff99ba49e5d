import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { DuckDBInstance } from '@duckdb/node-api';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { testSparkUrl } from '../../../test/spark.ts';
import { createLocalObjectStore } from '../../storage/local/local-object-store.ts';
import type { QueryEngine } from '../types.ts';
import { createSparkEngine } from './spark-engine.ts';
import { scanOf } from './spark-scans.ts';

/**
 * One server runs many users' statements at once on its one Spark Connect session. Spark binds
 * the files a statement names (its scans) as temporary views of the session, made and dropped
 * around the statement: were two statements to use the same view names, one could read the
 * other's files — a hospital or a release outside its user's grant — or find its view gone.
 */
describe('statements at once on one Spark session', () => {
  let folder: string;
  let engine: QueryEngine;
  /** Each file and the rows it holds: a different count per file, so a swap shows. */
  const files: Array<{ file: string; rows: number }> = [];

  beforeAll(async () => {
    folder = await mkdtemp(path.join(tmpdir(), 'medlake-spark-scans-'));
    const instance = await DuckDBInstance.create(':memory:');
    const connection = await instance.connect();
    for (const rows of [1, 7, 40, 300]) {
      const file = path.join(folder, `rows-${rows}.parquet`);
      await connection.run(
        `COPY (SELECT range AS n FROM range(${rows})) TO '${file}' (FORMAT parquet)`,
      );
      files.push({ file, rows });
    }
    connection.closeSync();
    instance.closeSync();
    engine = await createSparkEngine({
      url: testSparkUrl(),
      store: await createLocalObjectStore(folder),
    });
  }, 120_000);

  afterAll(async () => {
    await engine?.close();
    if (folder) await rm(folder, { recursive: true, force: true });
  });

  it('reads, for each statement, its own files and no other’s', async () => {
    const asked = Array.from({ length: 48 }, (_, index) => files[index % files.length]!);
    const answers = await Promise.all(
      asked.map(async ({ file }) => {
        try {
          const [row] = await engine.rows({
            sql: `SELECT count(*) AS n FROM ${scanOf([file])} AS t`,
            params: [],
          });
          return Number(row?.n);
        } catch (error) {
          return (error as Error).message;
        }
      }),
    );
    expect(answers).toEqual(asked.map(({ rows }) => rows));
  }, 300_000);
});
