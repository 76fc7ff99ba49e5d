import type { Group } from '@medlake/shared';
import type { SqlDialect } from '../engines/sql-dialect.ts';

/**
 * How an aggregate is finished from partial aggregates of one group and one patient:
 * `count` and `sum` add the partials (a count of nothing is 0, a sum of nothing NULL), `min` and
 * `max` take the least or greatest, `mean` divides the summed sums by the summed counts, and
 * `patients` counts the patients of the group. A measure without one (percentiles, histograms,
 * deviations) needs every row, and the aggregate is then computed from the rows.
 */
export type Combine = 'count' | 'sum' | 'min' | 'max' | 'mean' | 'patients';

/** An aggregate over the matching rows, with how it is finished from per-patient partials. */
export type SplitAggregate = {
  /** Its result column (a quoted identifier, or a hidden name). */
  name: string;
  /** The aggregate over rows: for `mean` the value's column, for `patients` unused. */
  expression: string;
  combine: Combine;
};

/**
 * Whether a grouping is finished from partials per group and patient, or aggregated directly
 * (a COUNT(DISTINCT) of patients per group, and the total's in a SELECT of its own): partials
 * for a grouping by one or two columns, unless one of them is a date bucket of a month or
 * less. The partials are the (group, patient) pairs, kept twice in memory (the aggregate's
 * table, then the copy both the groups and the total read); each more grouping column makes
 * them more numerous and wider. On the bench lake at 20 M rows with DuckDB's memory limit
 * scaled to a 50 M-row lake (800 MB of 2 GB), the partials of code, sex and age band spilled
 * 270 MB to disk where the direct aggregate spilled 156, and took 1.13× its CPU; by code they
 * spilled nothing and took 0.79× (docs/benchmarks.md, 2026-12-07). A bucket of a month or less
 * leaves about one partial per row (a patient has few results of one code in a month: 1.18 M
 * partials of 1.90 M rows by code and month at 10 M rows), so the partials only add an
 * aggregate: by code and month at 50 M rows the direct statement took 0.87 of the partials'
 * time and 0.93 of their CPU, alternately at load 3–7 (as the hand-written SQL does, 0.85).
 */
export function partialsPay(groups: readonly Group[]): boolean {
  if (groups.length < 1 || groups.length > 2) return false;
  return !groups.some((group) => 'bucket' in group && fineBuckets.has(group.bucket));
}

/** Date buckets that hold few of one patient's rows of one code each. */
const fineBuckets: ReadonlySet<string> = new Set(['day', 'week', 'month']);

/**
 * The rows of `source` (columns __g0, __g1, … and the patient) aggregated first per group and
 * patient, and the measures finished from that: the same figures, in one grouping the engine
 * does well. The distinct patients of each group are then the rows of the group, and those of
 * the grand total the distinct patients of these rows, instead of a COUNT(DISTINCT) per group
 * beside a second one over all matching rows (on the bench lake, DuckDB: 0.56–0.75 of the time,
 * below the hand-written SQL that leaves the total out). Each finished list ends with the hidden
 * rows and patients disclosure control counts.
 */
export function perPatientFirst(
  dialect: SqlDialect,
  source: string,
  groups: number,
  aggregates: readonly SplitAggregate[],
  hidden: { rows: string; patients: string },
): { source: string; groupList: string; totalList: string } {
  const patient = dialect.quoteIdentifier('patient');
  const keys = Array.from({ length: groups }, (_, index) => `__g${index}`);
  // Each partial once, by its expression: a count of rows serves the count measure and the
  // hidden rows alike.
  const partials = new Map<string, string>([['count(*)', '__r']]);
  const partial = (expression: string) => {
    const name = partials.get(expression) ?? `__p${partials.size}`;
    partials.set(expression, name);
    return name;
  };
  const parts = aggregates.map((aggregate) =>
    aggregate.combine === 'mean'
      ? [partial(`sum(${aggregate.expression})`), partial(`count(${aggregate.expression})`)]
      : aggregate.combine === 'patients'
        ? []
        : [partial(aggregate.expression)],
  );
  const partialList = [...partials].map(([expression, name]) => `${expression} AS ${name}`);
  const perPatient = `SELECT ${[...keys, patient, ...partialList].join(', ')} FROM ${source} AS s GROUP BY ${[...keys, patient].join(', ')}`;
  // Within a group, each row is one patient; across groups, a patient may have several rows.
  const patientsOf = (total: boolean) =>
    total ? dialect.countDistinct(patient) : `count(${patient})`;
  const counted = (name: string) => `CAST(coalesce(sum(${name}), 0) AS BIGINT)`;
  const finish = (aggregate: SplitAggregate, index: number, total: boolean): string => {
    const [first = '', second = ''] = parts[index] ?? [];
    switch (aggregate.combine) {
      case 'count':
        return counted(first);
      case 'sum':
      case 'min':
      case 'max':
        return `${aggregate.combine}(${first})`;
      case 'mean':
        return `CAST(sum(${first}) AS DOUBLE) / nullif(sum(${second}), 0)`;
      case 'patients':
        return patientsOf(total);
    }
  };
  const listOf = (total: boolean) =>
    [
      ...aggregates.map(
        (aggregate, index) => `${finish(aggregate, index, total)} AS ${aggregate.name}`,
      ),
      `${counted('__r')} AS ${hidden.rows}`,
      `${patientsOf(total)} AS ${hidden.patients}`,
    ].join(', ');
  return { source: `(${perPatient})`, groupList: listOf(false), totalList: listOf(true) };
}
