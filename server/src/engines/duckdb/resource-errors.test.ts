import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { DuckDBInstance } from '@duckdb/node-api';
import { describe, expect, it } from 'vitest';
import { resourceError } from './resource-errors.ts';

/** What DuckDB throws for a statement that needs more than its memory and temporary disk. */
async function engineFailure(settings: string[]): Promise<unknown> {
  const spill = await mkdtemp(path.join(tmpdir(), 'medlake-spill-'));
  const instance = await DuckDBInstance.create(':memory:');
  const connection = await instance.connect();
  try {
    await connection.run(`SET temp_directory = '${spill}'`);
    await connection.run('SET threads = 1');
    for (const setting of settings) await connection.run(setting);
    // Far more distinct values than fit: the aggregate must spill, or fail.
    await connection.run(
      "CREATE TEMP TABLE t AS SELECT DISTINCT (i::VARCHAR || '-' || repeat('x', 40)) AS v FROM range(4000000) r(i)",
    );
    return undefined;
  } catch (error) {
    return error;
  } finally {
    connection.closeSync();
    instance.closeSync();
    await rm(spill, { recursive: true, force: true });
  }
}

describe("an ingest's engine running out of resources", () => {
  it('names MEDLAKE_INGEST_MEMORY when memory runs out, not the engine', async () => {
    const error = await engineFailure(["SET memory_limit = '4MB'"]);
    expect(error).toBeInstanceOf(Error);
    const explained = resourceError(error, '4MB');
    expect(explained?.message).toMatch(/MEDLAKE_INGEST_MEMORY=4MB/);
    expect(explained?.message).not.toMatch(/Out of Memory Error|allocate|SET /);
    expect(explained?.status).toBe(503);
  });

  it('asks for free disk when the temporary directory is full', async () => {
    const error = await engineFailure([
      "SET memory_limit = '64MB'",
      "SET max_temp_directory_size = '1MB'",
    ]);
    expect(error).toBeInstanceOf(Error);
    const explained = resourceError(error, '64MB');
    expect(explained?.message).toMatch(/free disk space/);
    expect(explained?.message).not.toMatch(/max_temp_directory_size|Out of Memory Error/);
  });

  it('leaves other errors alone', () => {
    expect(resourceError(new Error('Conversion Error: could not convert'), '512MB')).toBe(
      undefined,
    );
  });
});
