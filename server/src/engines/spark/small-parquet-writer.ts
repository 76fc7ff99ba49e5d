import { randomUUID } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { DuckDBInstance, type DuckDBConnection } from '@duckdb/node-api';
import { AppError } from '../../errors.ts';
import type { ObjectStore } from '../../storage/object-store.ts';
import { lockDown } from '../duckdb/duckdb-sql.ts';
import { copyRowsToParquet } from '../duckdb/rows-to-parquet.ts';
import type { ParquetColumn } from '../types.ts';

/**
 * Writes the small files of rows the medlake server already holds (a disclosed aggregate) to
 * the store itself, with an in-process DuckDB, rather than through a Spark job: planning,
 * scheduling and committing a job for a few hundred rows cost a local Spark more than a
 * one-partition query (issue 22). DuckDB is opened at the first file, with one thread and
 * access to its own scratch folder only; each file is written there, then put in the store.
 */
export function createSmallParquetWriter(store: ObjectStore) {
  let opening: Promise<{ instance: DuckDBInstance; connection: DuckDBConnection; folder: string }>;
  // One file at a time on the one connection.
  let queue: Promise<unknown> = Promise.resolve();
  const open = async () => {
    const folder = await mkdtemp(path.join(tmpdir(), 'medlake-small-results-'));
    const instance = await DuckDBInstance.create(':memory:');
    const connection = await instance.connect();
    await lockDown(connection, {
      allowedDirectories: [folder],
      tempDirectory: folder,
      extra: ['SET threads = 1', "SET memory_limit = '256MB'"],
    });
    return { instance, connection, folder };
  };
  return {
    async write(
      rows: ReadonlyArray<Record<string, unknown>>,
      columns: ReadonlyArray<ParquetColumn>,
      target: string,
    ): Promise<void> {
      const key = store.keyOf(target);
      if (!key) throw new AppError('internal', 'Results are written only into the object store');
      opening ??= open();
      const { connection, folder } = await opening;
      const write = queue.then(async () => {
        const file = path.join(folder, `${randomUUID()}.parquet`);
        try {
          await copyRowsToParquet(connection, rows, columns, file);
          await store.putFile(key, file);
        } finally {
          await rm(file, { force: true });
        }
      });
      queue = write.catch(() => undefined);
      await write;
    },
    async close(): Promise<void> {
      if (!opening) return;
      const { instance, connection, folder } = await opening;
      connection.closeSync();
      instance.closeSync();
      await rm(folder, { recursive: true, force: true });
    },
  };
}
