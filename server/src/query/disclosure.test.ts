import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { hiddenPatients, hiddenRows, type ResultColumn } from './compile-query.ts';
import { applyDisclosureControl, type AggregateRow, type HistogramBin } from './disclosure.ts';

const columns: ResultColumn[] = [
  { name: 'code', kind: 'group', type: 'varchar' },
  { name: 'rows', kind: 'measure', type: 'integer', fn: 'count' },
  { name: 'patients', kind: 'measure', type: 'integer', fn: 'patients' },
  { name: 'value_mean', kind: 'measure', type: 'double', fn: 'mean' },
];

/** A group whose every row is a different patient, unless said otherwise. */
function group(code: string, rows: number, patients = rows): AggregateRow {
  return { code, rows, patients, value_mean: 5, [hiddenRows]: rows, [hiddenPatients]: patients };
}

function totalOf(groups: AggregateRow[]): AggregateRow {
  const rows = groups.reduce((sum, g) => sum + g[hiddenRows], 0);
  const patients = groups.reduce((sum, g) => sum + g[hiddenPatients], 0);
  return {
    code: null,
    rows,
    patients,
    value_mean: 5,
    [hiddenRows]: rows,
    [hiddenPatients]: patients,
  };
}

function disclose(groups: AggregateRow[], level: 'aggregate' | 'row' = 'aggregate') {
  return applyDisclosureControl({
    groups,
    total: totalOf(groups),
    columns,
    level,
    threshold: 11,
    grouped: true,
  });
}

describe('disclosure control', () => {
  it('suppresses groups of 1 to 10 patients, and their other measures with them', () => {
    const result = disclose([group('a', 50), group('b', 3), group('c', 40), group('d', 12)]);
    const b = result.rows.find((row) => row.code === 'b');
    expect(b).toMatchObject({ suppressed: true, rows: null, patients: null, value_mean: null });
    expect(result.rows.find((row) => row.code === 'a')).toMatchObject({
      suppressed: false,
      rows: 50,
    });
  });

  it('suppresses the next smallest group when one suppressed group could be worked out from the total', () => {
    const result = disclose([group('a', 50), group('b', 3), group('c', 40), group('d', 12)]);
    // With b alone hidden, total − a − c − d = b. d is the smallest published group.
    expect(result.rows.find((row) => row.code === 'd')?.suppressed).toBe(true);
    expect(result.rows.filter((row) => row.suppressed)).toHaveLength(2);
    expect(result.rules.map((rule) => rule.rule)).toEqual(['small_cell', 'complementary']);
  });

  it('adds groups until the hidden ones together hold at least the threshold', () => {
    // b and c are both small and together 4 rows: narrowed to 1..3 each, so one more goes.
    const result = disclose([
      group('a', 50),
      group('b', 2),
      group('c', 2),
      group('d', 30),
      group('e', 20),
    ]);
    const hidden = result.rows.filter((row) => row.suppressed).map((row) => row.code);
    expect(hidden).toEqual(['b', 'c', 'e']);
  });

  it('judges a group by its patients, not its rows', () => {
    const result = disclose([group('a', 200, 5), group('b', 100, 60), group('c', 90, 70)]);
    expect(result.rows.find((row) => row.code === 'a')?.suppressed).toBe(true);
  });

  it('suppresses everything when the whole result has fewer patients than the threshold', () => {
    const result = disclose([group('a', 4), group('b', 5)]);
    expect(result.total.suppressed).toBe(true);
    expect(result.rows.every((row) => row.suppressed)).toBe(true);
  });

  it('leaves figures alone for row-level access, and says so', () => {
    const result = disclose([group('a', 50), group('b', 3)], 'row');
    expect(result.rows.find((row) => row.code === 'b')).toMatchObject({
      suppressed: false,
      rows: 3,
    });
    expect(result.rules[0]?.rule).toBe('row_access');
  });

  it('hides small histogram bins and enough others to protect them', () => {
    const histogramColumns: ResultColumn[] = [
      { name: 'rows', kind: 'measure', type: 'integer', fn: 'count' },
      { name: 'h', kind: 'measure', type: 'histogram', fn: 'histogram' },
    ];
    const bins = [
      { key: 0, value: 40 },
      { key: 10, value: 4 },
      { key: 20, value: 25 },
      { key: 30, value: 60 },
    ];
    const row = { rows: 129, h: bins, [hiddenRows]: 129, [hiddenPatients]: 129 } as AggregateRow;
    const result = applyDisclosureControl({
      groups: [row],
      total: row,
      columns: histogramColumns,
      level: 'aggregate',
      threshold: 11,
      grouped: false,
    });
    const shown = result.total.h as HistogramBin[];
    expect(shown.filter((bin) => bin.suppressed).map((bin) => bin.bin)).toEqual([10, 20]);
    expect(shown.find((bin) => bin.bin === 10)?.count).toBeNull();
  });

  it('never publishes a count from 1 to 10, nor a hidden group that subtraction recovers', () => {
    const groupSizes = fc.array(
      fc.record({ rows: fc.integer({ min: 1, max: 200 }), extra: fc.integer({ min: 0, max: 50 }) }),
      { minLength: 1, maxLength: 30 },
    );
    fc.assert(
      fc.property(groupSizes, (sizes) => {
        // Patients ≤ rows, as in any real group.
        const groups = sizes.map((size, index) =>
          group(`g${index}`, size.rows + size.extra, size.rows),
        );
        const result = disclose(groups);
        const published = [...result.rows, result.total].filter((row) => !row.suppressed);
        for (const row of published) {
          for (const name of ['rows', 'patients']) {
            const value = row[name] as number;
            expect(value === 0 || value >= 11).toBe(true);
          }
        }
        if (!result.total.suppressed) {
          const hidden = groups.filter((_, index) => result.rows[index]?.suppressed);
          // What subtraction from the total reveals: the hidden groups' sum, never one of them.
          expect(hidden.length === 0 || hidden.length >= 2).toBe(true);
          const hiddenRowSum = hidden.reduce((sum, g) => sum + g[hiddenRows], 0);
          expect(hidden.length === 0 || hiddenRowSum >= 11).toBe(true);
        }
      }),
      { numRuns: 500 },
    );
  });
});
