import { createHash } from 'node:crypto';
import { canonicalJson, type Filter, type Group, type QuerySpec } from '@medlake/shared';
import { isNumeric, isTemporal, type QueryColumn } from '../query-columns.ts';
import {
  between,
  everything,
  intersect,
  isEmpty,
  onlyNull,
  otherValues,
  point,
  points,
  union,
  within,
  type Box,
  type Constraint,
  type Value,
} from './regions.ts';

/**
 * What a released cell covers, for the ledger's reasoning about sets: its box (the releases it
 * read, and one constraint per column from its filter and its group's labels) within its scope
 * (what of the filter is not a constraint on one column, and the cohort, kept as written). Two
 * cells of one scope can be added and subtracted; cells of different scopes are compared only
 * by their patient counts (release-ledger.ts).
 */
export type Scope = {
  where: Filter | null;
  cohort: QuerySpec['cohort'] | null;
  /** The releases the cohort's criteria read: the cohort's patients depend on them. */
  cohortReleases: string[];
};

export type ReleaseSlot = {
  id: string;
  hospitalId: string;
  month: string;
  /** The most rows one patient has in the release, when the catalog knows it. */
  maxRowsPerPatient?: number;
  /** How many files it has: the ledger's own statements read them by name. */
  fileCount?: number;
};

export type Shape = { box: Box; scope: Scope; scopeKey: string };

export type ShapeContext = {
  columns: ReadonlyMap<string, QueryColumn>;
  codeSets: Readonly<Record<string, readonly string[]>>;
};

export const sha256 = (value: unknown) =>
  createHash('sha256').update(canonicalJson(value)).digest('hex');

/**
 * A filter written so that the same rows give the same text: conditions of an `and` or `or`
 * in a fixed order, lists of codes and values sorted.
 */
export function normalFilter(filter: Filter): Filter {
  if ('and' in filter) return { and: filter.and.map(normalFilter).sort(byText) };
  if ('or' in filter) return { or: filter.or.map(normalFilter).sort(byText) };
  if ('not' in filter) return { not: normalFilter(filter.not) };
  if ('codes' in filter) return { ...filter, codes: [...new Set(filter.codes)].sort() };
  if ('values' in filter) return { ...filter, values: [...new Set(filter.values)].sort(byText) };
  return filter;
}

function byText(a: unknown, b: unknown): number {
  const [x, y] = [canonicalJson(a), canonicalJson(b)];
  return x < y ? -1 : x > y ? 1 : 0;
}

export function normalCohort(cohort: QuerySpec['cohort']): QuerySpec['cohort'] | null {
  if (!cohort) return null;
  return {
    ...cohort,
    criteria: cohort.criteria.map((criterion) => ({
      ...criterion,
      where: normalFilter(criterion.where),
    })),
  };
}

/** The query's box before grouping (hospital and month still as columns) and its scope. */
export function shapeOf(
  spec: Pick<QuerySpec, 'where' | 'cohort'>,
  context: ShapeContext,
  cohortReleases: readonly string[],
): Shape {
  const box: Box = {};
  const opaque: Filter[] = [];
  const conjuncts = spec.where ? flattenAnd(spec.where) : [];
  for (const conjunct of conjuncts) {
    const on = oneColumn(conjunct, context);
    if (on) box[on.column] = box[on.column] ? intersect(box[on.column]!, on.t) : on.t;
    else opaque.push(conjunct);
  }
  const scope: Scope = {
    where: opaque.length === 0 ? null : normalFilter({ and: opaque }),
    cohort: normalCohort(spec.cohort),
    cohortReleases: spec.cohort ? [...cohortReleases].sort() : [],
  };
  return { box, scope, scopeKey: sha256(scope) };
}

function flattenAnd(filter: Filter): Filter[] {
  return 'and' in filter ? filter.and.flatMap(flattenAnd) : [filter];
}

/**
 * A cell's box: the query's, narrowed by its group labels, with hospital and month turned into
 * the releases it read. Undefined when the cell can hold no row, or when a label cannot be
 * read as a constraint.
 */
export function cellBox(
  shape: Shape,
  groups: readonly Group[],
  labels: readonly unknown[] | null,
  releases: readonly ReleaseSlot[],
  context: ShapeContext,
): Box | undefined {
  const box: Box = { ...shape.box };
  for (const [index, group] of groups.entries()) {
    const column = context.columns.get(group.column);
    if (!column || !labels) return undefined;
    const constraint = groupConstraint(group, labels[index], column);
    if (!constraint) return undefined;
    box[group.column] = box[group.column] ? intersect(box[group.column]!, constraint) : constraint;
  }
  const { hospital, month, ...rest } = box;
  const ids = releases
    .filter(
      (release) =>
        (!hospital || within(point(release.hospitalId), hospital)) &&
        (!month || within(point(release.month), month)),
    )
    .map((release) => release.id);
  if (ids.length === 0 || Object.values(rest).some(isEmpty)) return undefined;
  return { ...rest, release: points(ids) };
}

/** The constraint of a group's label on its column: the rows of that group. */
function groupConstraint(
  group: Group,
  label: unknown,
  column: QueryColumn,
): Constraint | undefined {
  if (label === null || label === undefined) return onlyNull;
  if ('bucket' in group) {
    const from = toMillis(String(label));
    if (from === undefined) return undefined;
    return between(from, nextBucket(from, group.bucket), { to: true });
  }
  if ('bands' in group) {
    const bounds = [...new Set(group.bands)].sort((a, b) => a - b);
    if (label === `${bounds.at(-1)}+`) return between(bounds.at(-1), undefined);
    const index = bounds.findIndex(
      (bound, i) => label === `${i === 0 ? 0 : bounds[i - 1]}-${bound - 1}`,
    );
    if (index === -1) return undefined;
    return between(index === 0 ? undefined : bounds[index - 1], bounds[index], { to: true });
  }
  if ('binWidth' in group) {
    const from = Number(label);
    if (!Number.isFinite(from)) return undefined;
    return between(from, from + group.binWidth, { to: true });
  }
  const value = valueOf(column, label, true);
  return value === undefined ? undefined : point(value);
}

function nextBucket(from: number, bucket: Extract<Group, { bucket: unknown }>['bucket']): number {
  const date = new Date(from);
  switch (bucket) {
    case 'day':
      return from + 86_400_000;
    case 'week':
      return from + 7 * 86_400_000;
    case 'month':
      return date.setUTCMonth(date.getUTCMonth() + 1);
    case 'quarter':
      return date.setUTCMonth(date.getUTCMonth() + 3);
    case 'year':
      return date.setUTCFullYear(date.getUTCFullYear() + 1);
  }
}

/** A date or timestamp as milliseconds, read as UTC when it names no zone. */
export function toMillis(text: string): number | undefined {
  const zoned = /(Z|[+-]\d\d:?\d\d)$/.test(text);
  const iso = zoned
    ? text
    : text.length === 10
      ? `${text}T00:00:00Z`
      : `${text.replace(' ', 'T')}Z`;
  const ms = Date.parse(iso);
  return Number.isNaN(ms) ? undefined : ms;
}

/** A value as the ledger orders it: dates as milliseconds, true and false as 1 and 0. */
function valueOf(column: QueryColumn, value: unknown, lenient = false): Value | undefined {
  if (isTemporal(column.type)) return typeof value === 'string' ? toMillis(value) : undefined;
  if (isNumeric(column.type)) {
    if (typeof value === 'number') return value;
    if (lenient && typeof value === 'string' && value.trim() !== '' && Number.isFinite(+value)) {
      return Number(value);
    }
    return undefined;
  }
  if (column.type === 'boolean') return typeof value === 'boolean' ? Number(value) : undefined;
  return typeof value === 'string' ? value : undefined;
}

type Truth = { column: string; t: Constraint; f: Constraint };

/**
 * A filter that looks at one column only, as the rows it is true for and those it is false
 * for (SQL's NULL is neither: `not` swaps the two). Undefined for anything else.
 */
function oneColumn(filter: Filter, context: ShapeContext): Truth | undefined {
  if ('and' in filter || 'or' in filter) {
    const parts = ('and' in filter ? filter.and : filter.or).map((part) =>
      oneColumn(part, context),
    );
    const column = parts[0]?.column;
    if (!column || parts.some((part) => part?.column !== column)) return undefined;
    const truths = parts as Truth[];
    const meet = (list: Constraint[]) => list.reduce((a, b) => intersect(a, b));
    return 'and' in filter
      ? { column, t: meet(truths.map((p) => p.t)), f: union(...truths.map((p) => p.f)) }
      : { column, t: union(...truths.map((p) => p.t)), f: meet(truths.map((p) => p.f)) };
  }
  if ('not' in filter) {
    const inner = oneColumn(filter.not, context);
    return inner && { column: inner.column, t: inner.f, f: inner.t };
  }
  const comparison = (column: string, t: Constraint): Truth => ({
    column,
    t,
    f: otherValues(t),
  });
  switch (filter.op) {
    case 'code':
    case 'code_set': {
      const code = [...context.columns.values()].find((column) => column.role === 'code');
      const codes = filter.op === 'code' ? filter.codes : context.codeSets[filter.name];
      if (!code || !codes) return undefined;
      return comparison(code.name, points(codes));
    }
    case 'months':
      return comparison('month', between(filter.from, filter.to));
    case 'date_range': {
      const name =
        filter.column ?? [...context.columns.values()].find((column) => column.primaryDate)?.name;
      const column = name ? context.columns.get(name) : undefined;
      if (!column || !isTemporal(column.type)) return undefined;
      const from = filter.from === undefined ? undefined : toMillis(filter.from);
      const to = filter.to === undefined ? undefined : toMillis(filter.to);
      if ((filter.from && from === undefined) || (filter.to && to === undefined)) return undefined;
      const dayOnly = filter.to?.length === 10;
      return comparison(
        column.name,
        between(from, dayOnly && to !== undefined ? to + 86_400_000 : to, { to: dayOnly }),
      );
    }
    case 'last_months':
    case 'starts_with':
      return undefined;
    default:
      break;
  }
  const column = context.columns.get(filter.column);
  if (!column || column.linkage) return undefined;
  const value = (raw: unknown) => valueOf(column, raw);
  switch (filter.op) {
    case 'is_null':
      return { column: column.name, t: onlyNull, f: { ...everything, nulls: false } };
    case 'not_null':
      return { column: column.name, t: { ...everything, nulls: false }, f: onlyNull };
    case 'in':
    case 'not_in': {
      const values = filter.values.map(value);
      if (values.some((item) => item === undefined)) return undefined;
      const truth = comparison(column.name, points(values as Value[]));
      return filter.op === 'in' ? truth : { column: column.name, t: truth.f, f: truth.t };
    }
    case 'between': {
      const min = filter.min === undefined ? undefined : value(filter.min);
      const max = filter.max === undefined ? undefined : value(filter.max);
      if (
        (filter.min !== undefined && min === undefined) ||
        (filter.max !== undefined && max === undefined)
      )
        return undefined;
      return comparison(column.name, between(min, max));
    }
    default: {
      const bound = value(filter.value);
      if (bound === undefined) return undefined;
      const t = {
        eq: point(bound),
        ne: otherValues(point(bound)),
        lt: between(undefined, bound, { to: true }),
        lte: between(undefined, bound),
        gt: between(bound, undefined, { from: true }),
        gte: between(bound, undefined),
      }[filter.op];
      return comparison(column.name, t);
    }
  }
}
