import { createWriteStream } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import { DuckDBInstance } from '@duckdb/node-api';
import type { ObjectStore } from '../src/storage/object-store.ts';

/** Reads Parquet files whole, for assertions on what the lake holds. */
export async function readParquet(
  files: string | string[],
): Promise<Array<Record<string, unknown>>> {
  const list = (Array.isArray(files) ? files : [files]).map(
    (file) => `'${file.replaceAll("'", "''")}'`,
  );
  const instance = await DuckDBInstance.create(':memory:');
  const connection = await instance.connect();
  try {
    const reader = await connection.runAndReadAll(
      `SELECT * FROM read_parquet([${list.join(', ')}])`,
    );
    return reader.getRowObjectsJS() as Array<Record<string, unknown>>;
  } finally {
    connection.closeSync();
    instance.closeSync();
  }
}

/** The columns of a Parquet file as stored: names, physical types and their (converted) meaning. */
export async function parquetColumns(file: string): Promise<Array<Record<string, unknown>>> {
  const instance = await DuckDBInstance.create(':memory:');
  const connection = await instance.connect();
  try {
    const reader = await connection.runAndReadAll(
      `SELECT name, type, converted_type FROM parquet_schema('${file.replaceAll("'", "''")}') WHERE num_children IS NULL OR num_children = 0`,
    );
    return reader.getRowObjectsJS() as Array<Record<string, unknown>>;
  } finally {
    connection.closeSync();
    instance.closeSync();
  }
}

/**
 * The lake's row files under `prefix`: its `.parquet` objects, without the dictionary's pairs
 * files (`dictionary/pairs.pq`) that releases keep beside them.
 */
export async function lakeRowFiles(store: ObjectStore, prefix = 'lake/'): Promise<string[]> {
  return (await store.list(prefix)).filter((key) => key.endsWith('.parquet'));
}

/**
 * Reads Parquet objects whole, from whichever store holds them: they are copied out through
 * the store first, so that the check does not depend on the engine's own way to the store.
 */
export async function readParquetObjects(
  store: ObjectStore,
  keys: readonly string[],
): Promise<Array<Record<string, unknown>>> {
  if (keys.length === 0) return [];
  const scratch = await mkdtemp(path.join(tmpdir(), 'medlake-parquet-'));
  try {
    const files = await Promise.all(
      keys.map(async (key, index) => {
        const file = path.join(scratch, `${index}.parquet`);
        await pipeline(await store.get(key), createWriteStream(file));
        return file;
      }),
    );
    return await readParquet(files);
  } finally {
    await rm(scratch, { recursive: true, force: true });
  }
}
