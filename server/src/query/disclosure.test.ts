import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { hiddenPatients, hiddenRows, type ResultColumn } from './compile-query.ts';
import {
  applyDisclosureControl,
  percentilesNeedCounting,
  type AggregateRow,
  type HistogramBin,
} from './disclosure.ts';

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
  it('withholds groups of 1 to 10 patients entirely, labels included', () => {
    const result = disclose([group('a', 50), group('b', 3), group('c', 40), group('d', 12)]);
    expect(result.rows.map((row) => row.code)).toEqual(['a', 'c', 'd']);
    expect(result.withheld).toBe(1);
    expect(result.rows.every((row) => !row.suppressed)).toBe(true);
    expect(result.rules[0]).toMatchObject({ rule: 'small_cell', affected: 1 });
    expect(result.rules[0]?.description).toContain('left out, labels included');
  });

  it('judges a group by its patients, not its rows', () => {
    const result = disclose([group('a', 200, 5), group('b', 100, 60), group('c', 90, 70)]);
    expect(result.rows.map((row) => row.code)).toEqual(['b', 'c']);
  });

  it('suppresses everything when the whole result has fewer patients than the threshold', () => {
    const result = disclose([group('a', 4), group('b', 5)]);
    expect(result.total.suppressed).toBe(true);
    expect(result.rows).toEqual([]);
    const single = applyDisclosureControl({
      groups: [group('x', 40, 6)],
      total: group('x', 40, 6),
      columns,
      level: 'aggregate',
      threshold: 11,
      grouped: false,
    });
    expect(single.rows[0]).toMatchObject({ suppressed: true, rows: null, value_mean: null });
  });

  it('says that no patient matches when none does, not that the threshold of them do', () => {
    const none = group('none', 0);
    const ungrouped = applyDisclosureControl({
      groups: [none],
      total: none,
      columns,
      level: 'aggregate',
      threshold: 11,
      grouped: false,
    });
    expect(ungrouped.rows[0]).toMatchObject({ suppressed: false, rows: 0, patients: 0 });
    expect(ungrouped.rules[0]).toMatchObject({
      rule: 'small_cell',
      description: 'No patient matches the query, so there is nothing to suppress.',
      affected: 0,
    });
    const grouped = disclose([]);
    expect(grouped.total).toMatchObject({ suppressed: false, patients: 0 });
    expect(grouped.rules[0]?.description).toBe(
      'No patient matches the query, so there is nothing to suppress.',
    );
  });

  it('leaves figures alone for row-level access, and says so', () => {
    const result = disclose([group('a', 50), group('b', 3)], 'row');
    expect(result.rows.find((row) => row.code === 'b')).toMatchObject({
      suppressed: false,
      rows: 3,
    });
    expect(result.rules[0]?.rule).toBe('row_access');
  });

  it('suppresses a group the ledger holds back, and the total with it', () => {
    const groups = [group('a', 50), group('b', 30), group('c', 3)];
    const result = applyDisclosureControl({
      groups,
      total: totalOf(groups.slice(0, 2)),
      columns,
      level: 'aggregate',
      threshold: 11,
      grouped: true,
      ledger: { groups: [false, true, false], total: false },
    });
    expect(result.rows.map((row) => [row.code, row.suppressed])).toEqual([
      ['a', false],
      ['b', true],
    ]);
    expect(result.total).toMatchObject({ suppressed: true, rows: null });
  });

  const histogramColumns: ResultColumn[] = [
    { name: 'rows', kind: 'measure', type: 'integer', fn: 'count' },
    { name: 'h', kind: 'measure', type: 'histogram', fn: 'histogram', binPatients: '__hp0' },
  ];
  const binsOf = (counts: Record<number, number>) =>
    Object.entries(counts).map(([key, value]) => ({ key: Number(key), value }));
  const histogramOf = (rows: Record<number, number>, patients: Record<number, number>) => {
    const row = {
      rows: 200,
      h: binsOf(rows),
      __hp0: binsOf(patients),
      [hiddenRows]: 200,
      [hiddenPatients]: 120,
    } as AggregateRow;
    const result = applyDisclosureControl({
      groups: [row],
      total: row,
      columns: histogramColumns,
      level: 'aggregate',
      threshold: 11,
      grouped: false,
    });
    return result.total.h as HistogramBin[];
  };

  it('hides histogram bins of few patients however many rows they hold', () => {
    // Bin 10 holds 40 rows of 2 patients: a count of rows would publish it.
    const shown = histogramOf({ 0: 60, 10: 40, 20: 50, 30: 50 }, { 0: 30, 10: 2, 20: 12, 30: 40 });
    const hidden = shown.filter((bin) => bin.suppressed).map((bin) => bin.bin);
    // Bin 20 (12 patients, the fewest shown) goes too: the rows minus the bins shown would
    // otherwise be bin 10's count.
    expect(hidden).toEqual([10, 20]);
    expect(shown.find((bin) => bin.bin === 10)?.count).toBeNull();
  });

  it('empties a percentile that fewer than the threshold of patients on one side would decide', () => {
    const spread = { values: '__pn', perPatient: { inGroup: '__pmg', inAll: '__pma' } };
    const percentileColumns: ResultColumn[] = [
      { name: 'code', kind: 'group', type: 'varchar' },
      { name: 'v_p50', kind: 'measure', type: 'double', fn: 'percentile', p: 0.5, spread },
      { name: 'v_p95', kind: 'measure', type: 'double', fn: 'percentile', p: 0.95, spread },
    ];
    const row = (code: string, values: number, mostOfOne = 1) =>
      ({
        code,
        v_p50: 5,
        v_p95: 9,
        __pn: values,
        __pmg: mostOfOne,
        __pma: mostOfOne,
        [hiddenRows]: values,
        [hiddenPatients]: Math.ceil(values / mostOfOne),
      }) as AggregateRow;
    // c: 400 values of 20 patients each at most: the 200 below its median may be 10 patients'.
    const groups = [row('a', 30), row('b', 400), row('c', 400, 20)];
    const result = applyDisclosureControl({
      groups,
      total: row('', 830, 20),
      columns: percentileColumns,
      level: 'aggregate',
      threshold: 11,
      grouped: true,
    });
    // 30 patients: 15 on each side of the median, 1.5 above the 95th percentile.
    expect(result.rows[0]).toMatchObject({ v_p50: 5, v_p95: null });
    expect(result.rows[1]).toMatchObject({ v_p50: 5, v_p95: 9 });
    expect(result.rows[2]).toMatchObject({ v_p50: null, v_p95: null });
    expect(result.total).toMatchObject({ v_p50: 5, v_p95: null });
    expect(result.rules.find((rule) => rule.rule === 'single_record_measure')?.affected).toBe(4);
  });

  it('judges percentiles with the catalog bound, and asks for counting where the bound cannot show them safe', () => {
    const bounded = (atMost: number): ResultColumn[] => [
      { name: 'code', kind: 'group', type: 'varchar' },
      {
        name: 'v_p50',
        kind: 'measure',
        type: 'double',
        fn: 'percentile',
        p: 0.5,
        spread: { values: '__pn', perPatient: { atMost } },
      },
    ];
    const row = (code: string, values: number, patients: number) =>
      ({
        code,
        v_p50: 5,
        __pn: values,
        [hiddenRows]: values,
        [hiddenPatients]: patients,
      }) as AggregateRow;
    // 400 values: 200 on each side, of at least 20 patients if one has at most 10 of them, of
    // at least 4 if one may have 50.
    const groups = [row('a', 400, 40), row('small', 20, 5)];
    const total = row('', 420, 45);
    expect(percentilesNeedCounting(groups, total, bounded(10), 11)).toBe(false);
    expect(percentilesNeedCounting(groups, total, bounded(50), 11)).toBe(true);
    // A group that is withheld anyway needs no counting: with a bound of 10 the total and 'a'
    // are safe, and 'small' (5 patients) is never shown.
    const loose = applyDisclosureControl({
      groups,
      total,
      columns: bounded(50),
      level: 'aggregate',
      threshold: 11,
      grouped: true,
    });
    // Judged with the loose bound alone, the median is emptied, never shown unsafe.
    expect(loose.rows).toEqual([expect.objectContaining({ code: 'a', v_p50: null })]);
    const tight = applyDisclosureControl({
      groups,
      total,
      columns: bounded(10),
      level: 'aggregate',
      threshold: 11,
      grouped: true,
    });
    expect(tight.rows).toEqual([expect.objectContaining({ code: 'a', v_p50: 5 })]);
    // Columns that count per patient never ask for counting again.
    const counted = bounded(1).map((column) =>
      column.spread
        ? { ...column, spread: { values: '__pn', perPatient: { inGroup: '__x', inAll: '__y' } } }
        : column,
    );
    expect(percentilesNeedCounting(groups, total, counted, 11)).toBe(false);
  });

  it('never shows a group, or a histogram bin, of 1 to 10 patients', () => {
    const shapes = fc.array(
      fc.record({
        patients: fc.integer({ min: 1, max: 200 }),
        extra: fc.integer({ min: 0, max: 50 }),
        bins: fc.array(fc.integer({ min: 1, max: 60 }), { minLength: 1, maxLength: 8 }),
      }),
      { minLength: 1, maxLength: 30 },
    );
    fc.assert(
      fc.property(shapes, fc.boolean(), (sizes, grouped) => {
        const groups = sizes.map((size, index) => ({
          ...group(`g${index}`, size.patients + size.extra, size.patients),
          h: size.bins.map((patients, bin) => ({ key: bin, value: patients * 2 })),
          __hp0: size.bins.map((patients, bin) => ({ key: bin, value: patients })),
        })) as AggregateRow[];
        const shown = groups.filter((g) => g[hiddenPatients] >= 11);
        const total = totalOf(grouped ? shown : groups.slice(0, 1));
        const result = applyDisclosureControl({
          groups: grouped ? groups : groups.slice(0, 1),
          total,
          columns: [...columns, histogramColumns[1]!],
          level: 'aggregate',
          threshold: 11,
          grouped,
        });
        for (const row of [...result.rows, result.total]) {
          if (row.suppressed) continue;
          const source = groups.find((g) => g.code === row.code) ?? total;
          expect(source[hiddenPatients] === 0 || source[hiddenPatients] >= 11).toBe(true);
          const bins = (row.h ?? []) as HistogramBin[];
          const patientsOf = (bin: HistogramBin) =>
            (source.__hp0 as Array<{ key: number; value: number }> | undefined)?.find(
              (entry) => entry.key === bin.bin,
            )?.value ?? 0;
          for (const bin of bins)
            if (!bin.suppressed) expect(patientsOf(bin)).toBeGreaterThanOrEqual(11);
          // What the row count minus the bins shown reveals covers at least 11 patients.
          const hidden = bins.filter((bin) => bin.suppressed);
          if (hidden.length > 0 && hidden.length < bins.length) {
            expect(Math.max(...hidden.map(patientsOf))).toBeGreaterThanOrEqual(11);
          }
        }
        if (grouped) expect(result.withheld).toBe(groups.length - shown.length);
      }),
      { numRuns: 500 },
    );
  });
});
