import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { testSparkUrl } from '../../../test/spark.ts';
import { createLocalObjectStore } from '../../storage/local/local-object-store.ts';
import type { ObjectStore } from '../../storage/object-store.ts';
import type { ParquetColumn } from '../types.ts';
import { createSmallParquetWriter } from './small-parquet-writer.ts';
import { createSparkEngine } from './spark-engine.ts';

/** A disclosed aggregate written by the medlake server is read by Spark as Spark wrote it. */
describe('small Parquet files the medlake server writes for Spark', () => {
  let root: string;
  let store: ObjectStore;

  beforeAll(async () => {
    root = await mkdtemp(path.join(tmpdir(), 'medlake-small-parquet-'));
    store = createLocalObjectStore(root);
  });

  afterAll(async () => {
    await rm(root, { recursive: true, force: true });
  });

  const columns: ParquetColumn[] = [
    { name: 'code', type: 'varchar' },
    { name: 'patients', type: 'integer' },
    { name: 'age_band', type: 'smallint' },
    { name: 'mean', type: 'double' },
    { name: 'month', type: 'date' },
    { name: 'first_seen', type: 'timestamp' },
    { name: 'bins', type: 'histogram' },
    { name: 'suppressed', type: 'boolean' },
  ];
  const rows = [
    {
      code: '2093-3',
      patients: '12',
      age_band: 4,
      mean: 187.25,
      month: '2021-03-01',
      first_seen: '2021-03-04 10:20:30.5',
      bins: [{ bin: 150, count: '7', suppressed: false }],
      suppressed: false,
    },
    {
      code: '4548-4',
      patients: null,
      age_band: null,
      mean: null,
      month: null,
      first_seen: null,
      bins: null,
      suppressed: true,
    },
  ];

  it('writes rows of every result type that Spark reads back unchanged', async () => {
    const writer = createSmallParquetWriter(store);
    const spark = await createSparkEngine({ url: testSparkUrl(), store });
    try {
      const target = store.locate('results/q1/result.parquet');
      await writer.write(rows, columns, target);
      expect(await store.exists('results/q1/result.parquet')).toBe(true);
      const read = await spark.rows({
        sql: `SELECT * FROM ${spark.dialect.scanParquet([target])} AS r ORDER BY code`,
        params: [],
      });
      expect(read).toEqual(rows);
    } finally {
      await writer.close();
      await spark.close();
    }
  });

  it('refuses a target outside the store', async () => {
    const writer = createSmallParquetWriter(store);
    await expect(writer.write(rows, columns, '/elsewhere/result.parquet')).rejects.toThrow(
      /object store/,
    );
    await writer.close();
  });
});
