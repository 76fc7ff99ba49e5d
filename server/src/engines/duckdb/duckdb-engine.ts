import { mkdir } from 'node:fs/promises';
import { DuckDBInstance, type DuckDBConnection } from '@duckdb/node-api';
import type { EngineOptions, QueryEngine } from '../types.ts';

/**
 * DuckDB in-process, locked down: it may touch only the allowed directories, may not load or
 * install extensions on its own, and no statement can loosen that afterwards.
 */
export async function createDuckDbEngine(options: EngineOptions): Promise<QueryEngine> {
  await mkdir(options.tempDirectory, { recursive: true });
  const instance = await DuckDBInstance.create(':memory:');
  const setup = await instance.connect();
  const directories = [...options.allowedDirectories, options.tempDirectory];
  // Settings go through SQL because allowed_directories cannot be passed at create time.
  await setup.run(`SET allowed_directories = [${directories.map(quoteLiteral).join(', ')}]`);
  await setup.run(`SET temp_directory = ${quoteLiteral(options.tempDirectory)}`);
  await setup.run('SET enable_external_access = false');
  await setup.run('SET autoinstall_known_extensions = false');
  await setup.run('SET autoload_known_extensions = false');
  await setup.run('SET lock_configuration = true');
  setup.closeSync();

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

/** Quotes a string as a SQL literal; used only for paths from our own configuration. */
function quoteLiteral(value: string): string {
  return `'${value.replaceAll("'", "''")}'`;
}
