import { describe, expect, it } from 'vitest';
import {
  bucketsOf,
  chartData,
  chartPlan,
  defaultSort,
  formatBucket,
  formatCell,
  formatNumber,
} from './result-shape.ts';

const spec = {
  dataset: 'synthea-observations',
  groupBy: [{ column: 'observed_at', bucket: 'month' }, { column: 'hospital' }],
  measures: [
    { fn: 'mean', column: 'value' },
    { fn: 'percentile', column: 'value', p: 0.9 },
  ],
};
const columns = [
  { name: 'observed_at_month', kind: 'group' as const, type: 'date' },
  { name: 'hospital', kind: 'group' as const, type: 'varchar' },
  { name: 'value_mean', kind: 'measure' as const, type: 'double', fn: 'mean' },
  { name: 'value_p90', kind: 'measure' as const, type: 'double', fn: 'percentile' },
];

describe('a result as a report', () => {
  it('reads numbers without binary noise and time buckets as the bucket', () => {
    expect(formatNumber(128.20000000000002)).toBe((128.2).toLocaleString());
    expect(formatNumber(0.012345)).toBe(
      (0.0123).toLocaleString(undefined, { maximumSignificantDigits: 3 }),
    );
    expect(formatCell('suppressed')).toBe('suppressed');
    expect(formatBucket('2021-06-01', 'month')).toBe('2021-06');
    expect(formatBucket('2021-05-01T00:00:00.000Z', 'quarter')).toBe('2021 Q2');
    expect(formatBucket('2021-01-01', 'year')).toBe('2021');
  });

  it('starts in time order, and draws a line per hospital over the months', () => {
    const buckets = bucketsOf(spec);
    expect(defaultSort(columns, buckets)).toEqual({
      column: 'observed_at_month',
      direction: 'asc',
    });
    const plan = chartPlan('aggregate', columns, buckets);
    expect(plan).toEqual({
      kind: 'lines',
      x: 'observed_at_month',
      seriesBy: ['hospital'],
      measures: ['value_mean', 'value_p90'],
    });
    const rows = [
      { observed_at_month: '2021-03-01', hospital: 'north', value_mean: 170 },
      { observed_at_month: '2020-12-01', hospital: 'north', value_mean: 168 },
      { observed_at_month: '2020-12-01', hospital: 'synthea', value_mean: 171 },
      { observed_at_month: '2021-03-01', hospital: 'synthea', value_mean: null },
    ];
    const data = chartData(rows, plan as { x: string; seriesBy: string[] }, 'value_mean', (c, v) =>
      c === 'observed_at_month' ? formatBucket(v, 'month') : String(v),
    );
    expect(data.x).toEqual(['2020-12', '2021-03']);
    expect(data.series).toEqual([
      { label: 'north', data: [168, 170] },
      { label: 'synthea', data: [171, null] },
    ]);
    expect(data.missing).toBe(1);
  });

  it('has a picture for every shape', () => {
    const none = new Map();
    expect(chartPlan('rows', columns, none).kind).toBe('none');
    expect(chartPlan('aggregate', columns.slice(2), none).kind).toBe('totals');
    expect(chartPlan('aggregate', columns, none)).toMatchObject({
      kind: 'bars',
      x: 'observed_at_month',
      seriesBy: ['hospital'],
    });
    expect(
      chartPlan(
        'aggregate',
        [{ name: 'value_histogram', kind: 'measure', type: 'histogram' }],
        none,
      ),
    ).toEqual({ kind: 'histogram', column: 'value_histogram' });
  });
});
