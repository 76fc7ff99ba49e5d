import { DuckDBInstance, type DuckDBConnection, type DuckDBValue } from '@duckdb/node-api';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { inlineParameters } from './inline-parameters.ts';

describe('parameters inlined as literals', () => {
  let instance: DuckDBInstance;
  let connection: DuckDBConnection;

  beforeAll(async () => {
    instance = await DuckDBInstance.create(':memory:');
    connection = await instance.connect();
    await connection.run('CREATE TABLE kept AS SELECT 1 AS n');
  });

  afterAll(() => {
    connection.closeSync();
    instance.closeSync();
  });

  /** The row a statement gives with its parameters and with them inlined. */
  async function bothWays(sql: string, params: unknown[]) {
    const inlined = inlineParameters({ sql, params });
    expect(inlined).toBeDefined();
    const bound = await connection.runAndReadAll(sql, params as DuckDBValue[]);
    const literal = await connection.runAndReadAll(inlined!);
    return { bound: bound.getRowObjectsJson(), literal: literal.getRowObjectsJson(), inlined };
  }

  // Values come from researchers' specs: quotes, a statement's end, escape and placeholder
  // look-alikes must stay data.
  const strings = [
    "O'Brien",
    "x'); DROP TABLE kept; SELECT ('",
    "'' OR TRUE --",
    '$1 and $2',
    'back\\slash \\\' "quoted"',
    'two\nlines\ttab',
    'ünïcødé ✓ 𝄞',
    '',
  ];

  it.each(strings)('a string is the same value and type either way: %j', async (value) => {
    const { bound, literal } = await bothWays('SELECT $1 AS v, typeof($1) AS t', [value]);
    expect(literal).toEqual(bound);
    expect(literal[0]?.v).toBe(value);
    const [kept] = (await connection.runAndReadAll('SELECT count(*) AS n FROM kept')).getRows();
    expect(Number(kept?.[0])).toBe(1);
  });

  it.each([
    [0],
    [-7],
    [2_147_483_647],
    [2_147_483_648],
    [-(2 ** 40)],
    [2 ** 60],
    [-(2 ** 63)],
    [2 ** 63 - 1024],
    [6.5],
    [1e-7],
    [-0.1],
  ])('the number %d has the type and value its parameter has', async (value) => {
    const { bound, literal } = await bothWays('SELECT $1 AS v, typeof($1) AS t', [value]);
    expect(literal).toEqual(bound);
  });

  it('a whole number beyond BIGINT is the DOUBLE it is, where its parameter could not bind', async () => {
    for (const value of [1e308, -1e308, 2 ** 63]) {
      const inlined = inlineParameters({ sql: 'SELECT $1 AS v, typeof($1) AS t', params: [value] });
      const [row] = (await connection.runAndReadAll(inlined!)).getRowObjectsJson();
      expect(row).toEqual({ v: value, t: 'DOUBLE' });
      await expect(connection.runAndReadAll('SELECT $1', [value])).rejects.toThrow(/int64/);
    }
  });

  it('booleans, null and big integers keep their types', async () => {
    const { bound, literal } = await bothWays(
      'SELECT $1 AS a, typeof($1) AS ta, $2 AS b, $3 AS c, typeof($3) AS tc, $4 IS NULL AS d',
      [true, false, 12345678901234567890n, null],
    );
    expect(literal).toEqual(bound);
  });

  it('leaves placeholders inside quoted literals and identifiers alone', async () => {
    const { literal, inlined } = await bothWays(
      `SELECT '$1 it''s $2' AS "col $1", $1 AS v, $2 AS "w"`,
      ['a', 'b'],
    );
    expect(inlined).toBe(
      `SELECT '$1 it''s $2' AS "col $1", CAST('a' AS VARCHAR) AS v, CAST('b' AS VARCHAR) AS "w"`,
    );
    expect(literal).toEqual([{ 'col $1': "$1 it's $2", v: 'a', w: 'b' }]);
  });

  it('replaces $10 as the tenth value, not the first followed by 0', () => {
    const params = Array.from({ length: 10 }, (_, index) => index + 1);
    const sql = `SELECT $10, ${params
      .slice(0, 9)
      .map((_, index) => `$${index + 1}`)
      .join(', ')}`;
    expect(inlineParameters({ sql, params })).toMatch(
      /^SELECT CAST\('10' AS INTEGER\), CAST\('1' AS INTEGER\), CAST\('2' AS INTEGER\),/,
    );
  });

  it('keeps the parameters where a value has no exact literal', () => {
    for (const value of ['nul\0inside', Number.NaN, Infinity, new Date(), [1, 2]]) {
      expect(inlineParameters({ sql: 'SELECT $1', params: [value] })).toBeUndefined();
    }
    // A placeholder with no value: DuckDB's own error, through the parameters.
    expect(inlineParameters({ sql: 'SELECT $1, $2', params: ['a'] })).toBeUndefined();
    // A value no placeholder takes (another dialect's placeholders, say): refused the same way.
    expect(inlineParameters({ sql: 'SELECT ?', params: ['a'] })).toBeUndefined();
    expect(inlineParameters({ sql: 'SELECT $2', params: ['a', 'b'] })).toBeUndefined();
  });

  it('a statement without parameters is left as it is', () => {
    expect(inlineParameters({ sql: "SELECT '$1'", params: [] })).toBe("SELECT '$1'");
  });
});
