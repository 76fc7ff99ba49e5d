import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { DuckDBInstance, type DuckDBConnection } from '@duckdb/node-api';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { copyRowsToParquet } from './rows-to-parquet.ts';

describe('rows written to Parquet', () => {
  let directory: string;
  let instance: DuckDBInstance;
  let connection: DuckDBConnection;

  beforeAll(async () => {
    directory = await mkdtemp(path.join(tmpdir(), 'medlake-rows-parquet-'));
    instance = await DuckDBInstance.create(':memory:');
    connection = await instance.connect();
  });

  afterAll(async () => {
    connection.closeSync();
    instance.closeSync();
    await rm(directory, { recursive: true, force: true });
  });

  const columns = [
    { name: 'label', type: 'varchar' },
    { name: 'rows', type: 'integer' },
    { name: 'mean', type: 'double' },
    { name: 'suppressed', type: 'boolean' },
  ] as const;

  // Labels are data: quotes, a statement's end, parameter and escape look-alikes, lines.
  const labels = [
    "O'Brien",
    "''); COPY (SELECT 1) TO '/tmp/x.csv'; --",
    '$1 and $2',
    'back\\slash "quoted"',
    'two\nlines\ttab',
    'ünïcødé ✓ 𝄞',
    '',
  ];

  const readBack = async (file: string) =>
    (await connection.runAndReadAll(`SELECT * FROM read_parquet('${file}')`)).getRowObjectsJson();

  it.each([
    ['a small result, inlined in the statement', 1],
    ['a large result, passed as a parameter', 400],
  ])('writes %s exactly as given', async (_, copies) => {
    const rows = Array.from({ length: copies }, (_, copy) =>
      labels.map((label, index) => ({
        label: copies === 1 ? label : `${label} ${copy}`,
        rows: copy * 10 + index,
        mean: index === 2 ? null : index / 3,
        suppressed: index % 2 === 0,
      })),
    ).flat();
    // The small one stays under the limit of inlined JSON, the large one goes over it.
    expect(JSON.stringify(rows).length).toBeLessThan(copies === 1 ? 64 * 1024 : Infinity);
    if (copies > 1) expect(JSON.stringify(rows).length).toBeGreaterThan(64 * 1024);
    const file = path.join(directory, `result-${copies}.parquet`);
    await copyRowsToParquet(connection, rows, columns, file);
    expect(await readBack(file)).toEqual(rows.map((row) => ({ ...row, rows: String(row.rows) })));
  });
});
