import {
  groupOutputName,
  querySpecSchema,
  type HistogramBin,
  type timeBuckets,
} from '@medlake/shared';

type Bucket = (typeof timeBuckets)[number];
type Column = { name: string; kind: 'group' | 'measure' | 'row'; type: string; fn?: string };
type Row = Record<string, unknown>;

/** The time bucket of each bucketed group column of a query, by its result column's name. */
export function bucketsOf(spec: unknown): Map<string, Bucket> {
  const parsed = querySpecSchema.safeParse(spec);
  const buckets = new Map<string, Bucket>();
  if (!parsed.success) return buckets;
  for (const group of parsed.data.groupBy) {
    if ('bucket' in group) buckets.set(groupOutputName(group), group.bucket);
  }
  return buckets;
}

/**
 * A time bucket as people read it: the bucket's first day is what the engine gives
 * (2021-06-01), the bucket is what it means (2021-06). Buckets are computed on event dates as
 * they are stored, so they are not moved into the viewer's time zone.
 */
export function formatBucket(value: unknown, bucket: Bucket): string {
  if (typeof value !== 'string' && !(value instanceof Date)) return formatCell(value);
  const day = (typeof value === 'string' ? value : value.toISOString()).slice(0, 10);
  const [year, month] = day.split('-');
  switch (bucket) {
    case 'year':
      return year ?? day;
    case 'quarter':
      return `${year} Q${Math.floor((Number(month) - 1) / 3) + 1}`;
    case 'month':
      return day.slice(0, 7);
    case 'week':
      return `week of ${day}`;
    default:
      return day;
  }
}

/**
 * A number for reading: thousands grouped, no binary noise (128.20000000000002 reads 128.2),
 * as many decimals as the size of the number needs.
 */
export function formatNumber(value: number): string {
  if (Number.isInteger(value)) return value.toLocaleString();
  const size = Math.abs(value);
  const digits = size >= 100 ? 1 : size >= 1 ? 2 : 3;
  return size < 1 && size > 0
    ? value.toLocaleString(undefined, { maximumSignificantDigits: digits })
    : value.toLocaleString(undefined, { maximumFractionDigits: digits });
}

export function formatCell(value: unknown): string {
  if (value === null || value === undefined) return '—';
  if (Array.isArray(value)) {
    return (value as HistogramBin[])
      .map((bin) => `${formatNumber(bin.bin)}: ${formatCell(bin.count)}`)
      .join(', ');
  }
  if (typeof value === 'number') return formatNumber(value);
  return String(value);
}

/** The sort a result page starts with: its first time bucket, oldest first. */
export function defaultSort(
  columns: Column[],
  buckets: Map<string, Bucket>,
): { column: string; direction: 'asc' } | undefined {
  const time = columns.find((column) => column.kind === 'group' && buckets.has(column.name));
  return time ? { column: time.name, direction: 'asc' } : undefined;
}

export type ChartPlan =
  | { kind: 'none'; reason: string }
  | { kind: 'histogram'; column: string }
  | { kind: 'totals'; measures: string[] }
  | {
      kind: 'lines' | 'bars';
      /** The group along the x axis: a time bucket when there is one. */
      x: string;
      /** The other groups: each of their combinations is one line or bar series. */
      seriesBy: string[];
      measures: string[];
    };

/** What picture a result's shape calls for. */
export function chartPlan(
  kind: 'aggregate' | 'rows',
  columns: Column[],
  buckets: Map<string, Bucket>,
): ChartPlan {
  if (kind === 'rows') return { kind: 'none', reason: 'Row-level results are a table.' };
  const histogram = columns.find((column) => column.type === 'histogram');
  if (histogram) return { kind: 'histogram', column: histogram.name };
  const groups = columns.filter((column) => column.kind === 'group').map((column) => column.name);
  const measures = columns
    .filter((column) => column.kind === 'measure' && column.type !== 'histogram')
    .map((column) => column.name);
  if (measures.length === 0) return { kind: 'none', reason: 'The result has no measure to draw.' };
  if (groups.length === 0) return { kind: 'totals', measures };
  const time = groups.find((name) => buckets.has(name));
  const x = time ?? groups[0]!;
  return {
    kind: time ? 'lines' : 'bars',
    x,
    seriesBy: groups.filter((name) => name !== x),
    measures,
  };
}

export type ChartData = {
  x: string[];
  series: Array<{ label: string; data: Array<number | null> }>;
  /** Points with no number to draw: suppressed, or too few patients. */
  missing: number;
  /** Series left out to keep the chart readable. */
  hiddenSeries: number;
};

/** The most series a chart draws; the rest are in the table. */
export const maxSeries = 12;

/**
 * The rows of a result as the series of a chart: x values in order (time order for buckets),
 * one series per combination of the other groups, the largest first.
 */
export function chartData(
  rows: Row[],
  plan: { x: string; seriesBy: string[] },
  measure: string,
  label: (column: string, value: unknown) => string,
): ChartData {
  const xKeys: Array<{ key: string; raw: unknown }> = [];
  const seen = new Set<string>();
  for (const row of rows) {
    const key = String(row[plan.x] ?? '');
    if (!seen.has(key)) {
      seen.add(key);
      xKeys.push({ key, raw: row[plan.x] });
    }
  }
  xKeys.sort((a, b) => compareValues(a.raw, b.raw));
  const index = new Map(xKeys.map((item, i) => [item.key, i]));
  const series = new Map<string, Array<number | null>>();
  let missing = 0;
  for (const row of rows) {
    const name =
      plan.seriesBy.length === 0
        ? measure
        : plan.seriesBy.map((column) => label(column, row[column])).join(', ');
    const data = series.get(name) ?? xKeys.map(() => null);
    series.set(name, data);
    const value = row[measure];
    if (typeof value === 'number') data[index.get(String(row[plan.x] ?? ''))!] = value;
    else missing += 1;
  }
  const total = (data: Array<number | null>) => data.reduce<number>((sum, v) => sum + (v ?? 0), 0);
  const ordered = [...series.entries()]
    .map(([name, data]) => ({ label: name, data }))
    .sort((a, b) => total(b.data) - total(a.data) || a.label.localeCompare(b.label));
  return {
    x: xKeys.map((item) => label(plan.x, item.raw)),
    series: ordered.slice(0, maxSeries),
    missing,
    hiddenSeries: Math.max(0, ordered.length - maxSeries),
  };
}

function compareValues(a: unknown, b: unknown): number {
  if (a === null || a === undefined) return 1;
  if (b === null || b === undefined) return -1;
  if (typeof a === 'number' && typeof b === 'number') return a - b;
  return String(a).localeCompare(String(b), undefined, { numeric: true });
}
