import { DuckDBInstance } from '@duckdb/node-api';
import { describe, expect, it } from 'vitest';
import {
  cutFractions,
  groupKeys,
  rangeCondition,
  splitKey,
  type SortRange,
} from './sort-ranges.ts';

describe('sort ranges', () => {
  it('groups consecutive codes up to the budget, a code over it alone and marked', () => {
    const ranges = groupKeys(
      [
        { key: null, rows: 2 },
        { key: 'a', rows: 3 },
        { key: 'b', rows: 4 },
        { key: 'c', rows: 12 },
        { key: 'd', rows: 1 },
      ],
      5,
    );
    expect(ranges).toEqual([
      { from: null, to: 'a', rows: 5, split: false },
      { from: 'b', to: 'b', rows: 4, split: false },
      { from: 'c', to: 'c', rows: 12, split: true },
      { from: 'd', to: 'd', rows: 1, split: false },
    ]);
    expect(cutFractions(12, 5)).toEqual([1 / 3, 2 / 3]);
  });

  it('puts every row, empty values included, in exactly one range, ranges in sort order', async () => {
    const instance = await DuckDBInstance.create(':memory:');
    const connection = await instance.connect();
    try {
      await connection.run(`CREATE TABLE t AS SELECT * FROM (VALUES
        (NULL, DATE '2024-01-02'), (NULL, NULL), ('a', DATE '2024-01-01'), ('b', NULL),
        ('b', DATE '2024-01-03'), ('b', DATE '2024-01-05'), ('b', DATE '2024-01-09'),
        ('c', DATE '2024-01-01'), ('d', NULL)) v(code, day)`);
      const heavy: SortRange = { from: 'b', to: 'b', rows: 4 };
      const ranges = [
        { from: null, to: 'a', rows: 3 },
        ...splitKey(heavy, ['2024-01-05', '2024-01-09']),
        { from: 'c', to: 'd', rows: 2 },
      ];
      const literal = (column: 'first' | 'second', value: string) =>
        column === 'first' ? `'${value}'` : `DATE '${value}'`;
      const ordered = await connection.runAndReadAll(
        'SELECT code, CAST(day AS VARCHAR) AS day FROM t ORDER BY code NULLS FIRST, day NULLS FIRST',
      );
      const inRanges: unknown[] = [];
      for (const range of ranges) {
        const where = rangeCondition(range, { first: 'code', second: 'day' }, literal);
        const reader = await connection.runAndReadAll(
          `SELECT code, CAST(day AS VARCHAR) AS day FROM t WHERE ${where} ORDER BY code NULLS FIRST, day NULLS FIRST`,
        );
        inRanges.push(...reader.getRowObjectsJS());
      }
      expect(inRanges).toEqual(ordered.getRowObjectsJS());
      // The heavy code's three parts: its empty date with the first.
      expect(splitKey(heavy, ['2024-01-05', '2024-01-09']).map((range) => range.within)).toEqual([
        { before: '2024-01-05' },
        { after: '2024-01-05', before: '2024-01-09' },
        { after: '2024-01-09' },
      ]);
    } finally {
      connection.closeSync();
      instance.closeSync();
    }
  });
});
