import type { Condition, Filter, QuerySpec } from '@medlake/shared';
import type { FileCodes } from '../catalog/release-files-repository.ts';

/** A release the query could read: one hospital's month, in its folder of Parquet files. */
export type CandidateRelease = {
  id: string;
  hospitalId: string;
  month: string;
  /** The release's folder in the lake (lake-keys.ts). */
  folder: string;
  /** How many files it has, as the catalog lists them (releaseFileLocations). */
  fileCount?: number;
  /** The most rows one patient has in it, when the catalog knows. */
  maxRowsPerPatient?: number;
  /**
   * Those of its files that may hold the codes the query asks for, with those codes, when the
   * catalog knows (release-files-repository.ts `holding`).
   */
  files?: readonly FileCodes[];
  /**
   * In a plan: the only files of the folder the query reads (the others cannot hold its rows);
   * all of them when absent.
   */
  readFiles?: string[];
};

/**
 * At least the most rows one patient has across these releases: the sum of each one's most (a
 * patient may be in several), when the catalog knows it for every one of them.
 */
export function mostRowsPerPatient(
  releases: Iterable<{ maxRowsPerPatient?: number } | undefined>,
): number | undefined {
  let sum = 0;
  for (const release of releases) {
    if (release?.maxRowsPerPatient === undefined) return undefined;
    sum += release.maxRowsPerPatient;
  }
  return sum;
}

/**
 * What the catalog may leave out before planning: a query whose rows (and whose cohort
 * criteria's rows) can only come from these hospitals and from upload months in this range.
 * Anything unbounded is undefined. Conservative: planQuery still decides release by release.
 */
export type CatalogBounds = { hospitals?: string[]; from?: string; to?: string };

export function catalogBounds(spec: Pick<QuerySpec, 'where' | 'cohort'>): CatalogBounds {
  const filters = [
    spec.where,
    ...(spec.cohort?.criteria.map((criterion) => criterion.where) ?? []),
  ];
  // "The latest N months" is counted among the months there are data for: all of them.
  if (filters.some((filter) => filter && mentionsLastMonths(filter))) return {};
  return filters.map((filter) => (filter ? boundsOf(filter) : {})).reduce(either);
}

function mentionsLastMonths(filter: Filter): boolean {
  if ('and' in filter) return filter.and.some(mentionsLastMonths);
  if ('or' in filter) return filter.or.some(mentionsLastMonths);
  if ('not' in filter) return mentionsLastMonths(filter.not);
  return 'op' in filter && filter.op === 'last_months';
}

function boundsOf(filter: Filter): CatalogBounds {
  if ('and' in filter) return filter.and.map(boundsOf).reduce(both);
  if ('or' in filter) return filter.or.map(boundsOf).reduce(either);
  if ('not' in filter) return {};
  if (filter.op === 'months') return { from: filter.from, to: filter.to };
  if (!('column' in filter)) return {};
  if (filter.column === 'hospital') {
    if (filter.op === 'eq') return { hospitals: [String(filter.value)] };
    if (filter.op === 'in') return { hospitals: filter.values.map(String) };
    return {};
  }
  if (filter.column === 'month') {
    const text = (value: unknown) => (typeof value === 'string' ? value : undefined);
    switch (filter.op) {
      case 'eq':
        return { from: text(filter.value), to: text(filter.value) };
      case 'gt':
      case 'gte':
        return { from: text(filter.value) };
      case 'lt':
      case 'lte':
        return { to: text(filter.value) };
      case 'between':
        return { from: text(filter.min), to: text(filter.max) };
      case 'in': {
        const months = filter.values.map(String).sort();
        return { from: months[0], to: months.at(-1) };
      }
    }
  }
  return {};
}

/** Rows that meet both: the narrower bounds. */
function both(a: CatalogBounds, b: CatalogBounds): CatalogBounds {
  return {
    hospitals:
      a.hospitals && b.hospitals
        ? a.hospitals.filter((hospital) => b.hospitals!.includes(hospital))
        : (a.hospitals ?? b.hospitals),
    from: [a.from, b.from].filter(Boolean).sort().at(-1),
    to: [a.to, b.to].filter(Boolean).sort()[0],
  };
}

/** Rows that meet either: the wider bounds, unbounded where either is. */
function either(a: CatalogBounds, b: CatalogBounds): CatalogBounds {
  return {
    hospitals:
      a.hospitals && b.hospitals ? [...new Set([...a.hospitals, ...b.hospitals])] : undefined,
    from: a.from && b.from ? [a.from, b.from].sort()[0] : undefined,
    to: a.to && b.to ? [a.to, b.to].sort().at(-1) : undefined,
  };
}

export type QueryPlan = {
  /** The spec with relative parts (`last_months`) made absolute, as the job records it. */
  spec: QuerySpec;
  /** The releases the main query reads, and those each cohort criterion reads. */
  main: CandidateRelease[];
  cohort: CandidateRelease[][];
};

/**
 * A hospital's month, and where the catalog knows them, the codes of one file of it: a filter
 * on the code column is false for a file without any of the codes it asks for.
 */
type Partition = { hospital: string; month: string; codes?: ReadonlySet<string> };

/** What the planner knows of the dataset beyond its partitions. */
export type PlanOptions = {
  /** The lake column whose values the catalog lists per file (the contract's code). */
  codeColumn?: string;
  /** The server's code sets, name → codes, for filters on a code set. */
  codeSets?: Readonly<Record<string, readonly string[]>>;
};

/**
 * The planner's options for a dataset of these query columns: its (first) code column, which
 * the `code` and `code_set` filters are on too, and the code sets those name. Files are chosen
 * by their codes only where the code column holds text: the catalog lists a file's codes as
 * text, and a number's text is not the one a query names (12 is listed as '12.0' from a double
 * column, and the engines match a code '012' to the integer 12), so a file that holds the
 * code would be left out.
 */
export function planOptionsOf(
  columns: ReadonlyMap<string, { name: string; role: string; type: string }>,
  codeSets?: Readonly<Record<string, readonly string[]>>,
): PlanOptions {
  const code = [...columns.values()].find((column) => column.role === 'code');
  if (!code || code.type !== 'varchar') return {};
  return { codeColumn: code.name, ...(codeSets ? { codeSets } : {}) };
}

/**
 * The codes every row the filter keeps has, where the filter says (undefined where it does
 * not): `and` narrows to the codes all its bounded parts allow, `or` bounds only when each of
 * its parts does, `not` and conditions on other columns say nothing.
 */
export function codesOf(
  filter: Filter | undefined,
  options: PlanOptions,
): ReadonlySet<string> | undefined {
  if (!filter || options.codeColumn === undefined) return undefined;
  if ('and' in filter) {
    const bounded = filter.and.flatMap((part) => codesOf(part, options) ?? []);
    return bounded.reduce<ReadonlySet<string> | undefined>(
      (all, codes) => (all ? new Set([...all].filter((code) => codes.has(code))) : codes),
      undefined,
    );
  }
  if ('or' in filter) {
    const parts = filter.or.map((part) => codesOf(part, options));
    if (parts.some((codes) => codes === undefined)) return undefined;
    return new Set(parts.flatMap((codes) => [...codes!]));
  }
  if ('not' in filter) return undefined;
  const listed = codesOfCondition(filter, options);
  return listed && new Set(listed);
}

function codesOfCondition(
  condition: Condition,
  options: PlanOptions,
): readonly string[] | undefined {
  if (condition.op === 'code') return condition.codes;
  if (condition.op === 'code_set') return options.codeSets?.[condition.name];
  if (!('column' in condition) || condition.column !== options.codeColumn) return undefined;
  if (condition.op === 'eq') return [String(condition.value)];
  if (condition.op === 'in') return condition.values.map(String);
  return undefined;
}

/**
 * The codes whose files the planner needs the catalog's statistics of: those of the main
 * filter and of each cohort criterion that bounds its codes (codesOf), all together; undefined
 * when none does, since a filter that does not bound its codes reads its releases whole.
 */
export function catalogCodes(
  spec: Pick<QuerySpec, 'where' | 'cohort'>,
  options: PlanOptions,
): string[] | undefined {
  const bounded = [spec.where, ...(spec.cohort?.criteria.map((criterion) => criterion.where) ?? [])]
    .map((filter) => codesOf(filter, options))
    .filter((codes) => codes !== undefined);
  if (bounded.length === 0) return undefined;
  return [...new Set(bounded.flatMap((codes) => [...codes]))].sort();
}
type Truth = boolean | 'unknown';

/**
 * Decides which releases a query reads. A release is left out when the query's filter is false
 * for its hospital and month whatever its rows hold, so a one-hospital, one-month query reads
 * one partition. Cohort criteria are planned on their own filters: they may look at months
 * the main filter excludes.
 */
export function planQuery(
  spec: QuerySpec,
  candidates: readonly CandidateRelease[],
  options: PlanOptions = {},
): QueryPlan {
  const months = [...new Set(candidates.map((release) => release.month))].sort().reverse();
  const resolve = (filter: Filter | undefined) => filter && resolveLastMonths(filter, months);
  const resolved: QuerySpec = {
    ...spec,
    where: resolve(spec.where),
    cohort: spec.cohort && {
      ...spec.cohort,
      criteria: spec.cohort.criteria.map((criterion) => ({
        ...criterion,
        where: resolveLastMonths(criterion.where, months),
      })),
    },
  };
  // The catalog gives every file listing the one code asked the same array: one set of it.
  const codeSets = new WeakMap<readonly string[], ReadonlySet<string>>();
  const setOf = (codes: readonly string[]) => {
    const known = codeSets.get(codes);
    if (known) return known;
    const set = new Set(codes);
    codeSets.set(codes, set);
    return set;
  };
  const reads = (filter: Filter | undefined) => {
    // A filter that does not bound its codes reads its releases whole: the catalog may have
    // given only the files of other filters' codes (catalogCodes).
    const bounded = codesOf(filter, options) !== undefined;
    return candidates.flatMap((release) => {
      const partition = { hospital: release.hospitalId, month: release.month };
      if (!filter) return [release];
      if (evaluate(filter, partition, options) === false) return [];
      if (!release.files || !bounded) return [release];
      // As Iceberg's manifests let a planner do: files whose codes cannot match are not read,
      // and a release none of whose files can is not read at all.
      const files = release.files.filter(
        (file) =>
          file.codes === null ||
          evaluate(filter, { ...partition, codes: setOf(file.codes) }, options) !== false,
      );
      return files.length === 0 ? [] : [{ ...release, readFiles: files.map((file) => file.file) }];
    });
  };
  return {
    spec: resolved,
    main: reads(resolved.where),
    cohort: (resolved.cohort?.criteria ?? []).map((criterion) => reads(criterion.where)),
  };
}

/** "The latest N months" becomes "from month M", M counted among the months there are data for. */
function resolveLastMonths(filter: Filter, monthsNewestFirst: readonly string[]): Filter {
  if ('and' in filter)
    return { and: filter.and.map((f) => resolveLastMonths(f, monthsNewestFirst)) };
  if ('or' in filter) return { or: filter.or.map((f) => resolveLastMonths(f, monthsNewestFirst)) };
  if ('not' in filter) return { not: resolveLastMonths(filter.not, monthsNewestFirst) };
  if (filter.op !== 'last_months') return filter;
  const from = monthsNewestFirst[Math.min(filter.months, monthsNewestFirst.length) - 1];
  return from ? { op: 'months', from } : { op: 'months', to: '0000-01' };
}

/** Three-valued: what the filter is for every row of the partition, when that can be told. */
function evaluate(filter: Filter, partition: Partition, options: PlanOptions = {}): Truth {
  if ('and' in filter) {
    const parts = filter.and.map((part) => evaluate(part, partition, options));
    if (parts.includes(false)) return false;
    return parts.every((part) => part === true) ? true : 'unknown';
  }
  if ('or' in filter) {
    const parts = filter.or.map((part) => evaluate(part, partition, options));
    if (parts.includes(true)) return true;
    return parts.every((part) => part === false) ? false : 'unknown';
  }
  if ('not' in filter) {
    const inner = evaluate(filter.not, partition, options);
    return inner === 'unknown' ? inner : !inner;
  }
  return evaluateCondition(filter, partition, options);
}

function evaluateCondition(
  condition: Condition,
  partition: Partition,
  options: PlanOptions,
): Truth {
  if (partition.codes) {
    // Only the conditions codesOf bounds: a file none of whose codes they allow has no row
    // that meets them; otherwise some of its rows may hold other codes.
    const allowed = codesOfCondition(condition, options);
    if (allowed) return allowed.some((code) => partition.codes!.has(code)) ? 'unknown' : false;
  }
  if (condition.op === 'months') {
    return (
      (condition.from === undefined || partition.month >= condition.from) &&
      (condition.to === undefined || partition.month <= condition.to)
    );
  }
  if (
    !('column' in condition) ||
    (condition.column !== 'hospital' && condition.column !== 'month')
  ) {
    return 'unknown';
  }
  const actual = partition[condition.column];
  switch (condition.op) {
    case 'eq':
      return actual === condition.value;
    case 'ne':
      return actual !== condition.value;
    case 'lt':
    case 'lte':
    case 'gt':
    case 'gte': {
      if (typeof condition.value !== 'string') return 'unknown';
      const ordinal = actual < condition.value ? -1 : actual > condition.value ? 1 : 0;
      return { lt: ordinal < 0, lte: ordinal <= 0, gt: ordinal > 0, gte: ordinal >= 0 }[
        condition.op
      ];
    }
    case 'in':
      return condition.values.includes(actual);
    case 'not_in':
      return !condition.values.includes(actual);
    case 'between':
      return (
        (condition.min === undefined || actual >= String(condition.min)) &&
        (condition.max === undefined || actual <= String(condition.max))
      );
    case 'is_null':
      return false;
    case 'not_null':
      return true;
    case 'starts_with':
      return actual.startsWith(condition.value);
    default:
      return 'unknown';
  }
}
