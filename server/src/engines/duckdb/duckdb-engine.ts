import { mkdir } from 'node:fs/promises';
import { DuckDBInstance, type DuckDBConnection } from '@duckdb/node-api';
import type { EngineOptions, QueryEngine } from '../types.ts';
import { lockDown } from './duckdb-sql.ts';

/** DuckDB in-process for queries, locked to the lake and results directories. */
export async function createDuckDbEngine(options: EngineOptions): Promise<QueryEngine> {
  await mkdir(options.tempDirectory, { recursive: true });
  const instance = await DuckDBInstance.create(':memory:');
  const setup = await instance.connect();
  try {
    await lockDown(setup, options);
  } finally {
    setup.closeSync();
  }

  return {
    kind: 'duckdb',

    async ping() {
      await withConnection(instance, async (connection) => {
        const reader = await connection.runAndReadAll('SELECT 1 AS ok');
        if (reader.getRows()[0]?.[0] !== 1) throw new Error('DuckDB answered SELECT 1 wrongly');
      });
    },

    async close() {
      instance.closeSync();
    },
  };
}

async function withConnection<T>(
  instance: DuckDBInstance,
  work: (connection: DuckDBConnection) => Promise<T>,
): Promise<T> {
  const connection = await instance.connect();
  try {
    return await work(connection);
  } finally {
    connection.closeSync();
  }
}
