// The search as it was before its geometry was made faster (2026-12-07), kept unchanged as
// the oracle of search-equivalence.test.ts: the faster one must flag exactly what it flagged.
/**
 * The release ledger's geometry: what a released cell covers, as a box (a conjunction of one
 * constraint per column, and the releases read), and what a signed combination of cells
 * covers. The box and its parts are types of catalog/cell-box.ts, where the repository that
 * stores them reads them too.
 */
import type { Box, Constraint, Cut, Range, Value } from '../../src/catalog/cell-box.ts';

export type { Box, Constraint, Cut, Range, Value };

const below = (v: Value): Cut => ({ v, s: -1 });
const above = (v: Value): Cut => ({ v, s: 1 });
const start: Cut = { inf: -1 };
const end: Cut = { inf: 1 };

function compareValues(a: Value, b: Value): number {
  if (typeof a !== typeof b) return typeof a === 'number' ? -1 : 1;
  return a < b ? -1 : a > b ? 1 : 0;
}

export function compareCuts(a: Cut, b: Cut): number {
  if ('inf' in a) return 'inf' in b ? a.inf - b.inf : a.inf;
  if ('inf' in b) return -b.inf;
  return compareValues(a.v, b.v) || a.s - b.s;
}

export const everything: Constraint = { ranges: [[start, end]], nulls: true };
export const nothing: Constraint = { ranges: [], nulls: false };
const anyValue: Constraint = { ranges: [[start, end]], nulls: false };

export const point = (v: Value): Constraint => ({ ranges: [[below(v), above(v)]], nulls: false });
export const points = (values: readonly Value[]): Constraint =>
  union(...values.map((value) => point(value)));
export const onlyNull: Constraint = { ranges: [], nulls: true };

/** Values from `from` (inclusive unless `fromOpen`) to `to` (inclusive unless `toOpen`). */
export function between(
  from: Value | undefined,
  to: Value | undefined,
  open: { from?: boolean; to?: boolean } = {},
): Constraint {
  const lo = from === undefined ? start : open.from ? above(from) : below(from);
  const hi = to === undefined ? end : open.to ? below(to) : above(to);
  return normal({ ranges: [[lo, hi]], nulls: false });
}

/** Sorted, empty ranges dropped, overlapping and touching ones merged. */
function normal(constraint: Constraint): Constraint {
  const ranges = constraint.ranges
    .filter(([lo, hi]) => compareCuts(lo, hi) < 0)
    .toSorted((a, b) => compareCuts(a[0], b[0]));
  const merged: Array<[Cut, Cut]> = [];
  for (const [lo, hi] of ranges) {
    const last = merged.at(-1);
    if (last && compareCuts(lo, last[1]) <= 0) {
      if (compareCuts(hi, last[1]) > 0) last[1] = hi;
    } else merged.push([lo, hi]);
  }
  return { ranges: merged, nulls: constraint.nulls };
}

export function union(...constraints: readonly Constraint[]): Constraint {
  return normal({
    ranges: constraints.flatMap((constraint) => constraint.ranges),
    nulls: constraints.some((constraint) => constraint.nulls),
  });
}

export function intersect(a: Constraint, b: Constraint): Constraint {
  const ranges: Range[] = [];
  for (const [alo, ahi] of a.ranges) {
    for (const [blo, bhi] of b.ranges) {
      const lo = compareCuts(alo, blo) >= 0 ? alo : blo;
      const hi = compareCuts(ahi, bhi) <= 0 ? ahi : bhi;
      if (compareCuts(lo, hi) < 0) ranges.push([lo, hi]);
    }
  }
  return normal({ ranges, nulls: a.nulls && b.nulls });
}

/** Everything not in the constraint, NULL included or not as `nulls` says. */
export function complement(constraint: Constraint, nulls = !constraint.nulls): Constraint {
  const ranges: Range[] = [];
  let from: Cut = start;
  for (const [lo, hi] of constraint.ranges) {
    if (compareCuts(from, lo) < 0) ranges.push([from, lo]);
    from = hi;
  }
  if (compareCuts(from, end) < 0) ranges.push([from, end]);
  return normal({ ranges, nulls });
}

/** The non-NULL values not in the constraint: what a SQL comparison is false for. */
export const otherValues = (constraint: Constraint) => intersect(complement(constraint), anyValue);

export const isEmpty = (constraint: Constraint) =>
  constraint.ranges.length === 0 && !constraint.nulls;

export function isEverything(constraint: Constraint): boolean {
  const [only] = constraint.ranges;
  return (
    constraint.nulls && constraint.ranges.length === 1 && 'inf' in only![0] && 'inf' in only![1]
  );
}

function isPoint([lo, hi]: Range): boolean {
  return 'v' in lo && 'v' in hi && lo.s === -1 && hi.s === 1 && lo.v === hi.v;
}

/** Whether `inner` lies within `outer`: each of its ranges within one of outer's (merged) ranges. */
export function within(inner: Constraint, outer: Constraint): boolean {
  if (inner === outer) return true;
  if (inner.nulls && !outer.nulls) return false;
  let j = 0;
  for (const [lo, hi] of inner.ranges) {
    while (j < outer.ranges.length && compareCuts(outer.ranges[j]![1], hi) < 0) j += 1;
    const range = outer.ranges[j];
    if (!range || compareCuts(range[0], lo) > 0) return false;
  }
  return true;
}

/** Whether two constraints share a value (or NULL). */
export function meet(a: Constraint, b: Constraint): boolean {
  if (a.nulls && b.nulls) return true;
  if (a === b) return a.ranges.length > 0;
  const [x] = a.ranges;
  const [y] = b.ranges;
  if (a.ranges.length === 1 && b.ranges.length === 1 && isPoint(x!) && isPoint(y!)) {
    return (x![0] as { v: Value }).v === (y![0] as { v: Value }).v;
  }
  let i = 0;
  let j = 0;
  while (i < a.ranges.length && j < b.ranges.length) {
    const [alo, ahi] = a.ranges[i]!;
    const [blo, bhi] = b.ranges[j]!;
    if (compareCuts(alo, bhi) < 0 && compareCuts(blo, ahi) < 0) return true;
    if (compareCuts(ahi, bhi) < 0) i += 1;
    else j += 1;
  }
  return false;
}

export function boxIntersect(a: Box, b: Box): Box | undefined {
  const result: Box = { ...a };
  for (const [dim, constraint] of Object.entries(b)) {
    const both = result[dim] ? intersect(result[dim], constraint) : constraint;
    if (isEmpty(both)) return undefined;
    result[dim] = both;
  }
  return Object.values(result).some(isEmpty) ? undefined : result;
}

export function boxesMeet(a: Box, b: Box): boolean {
  // The releases read overlap more often than anything else: they are looked at last.
  for (const dim in a) {
    if (dim === 'release') continue;
    const other = b[dim];
    if (other && !meet(a[dim]!, other)) return false;
  }
  return !a.release || !b.release || meet(a.release, b.release);
}

/** Whether box `inner` lies within box `outer`. */
export function boxWithin(inner: Box, outer: Box): boolean {
  for (const dim in outer) {
    if (!within(inner[dim] ?? everything, outer[dim]!)) return false;
  }
  return true;
}

/** Whether a ∩ b lies within c (true when a and b do not meet). */
export function meetWithin(a: Box, b: Box, c: Box): boolean {
  if (!boxesMeet(a, b)) return true;
  const both = boxIntersect(a, b);
  return both === undefined || boxWithin(both, c);
}

/**
 * A necessary condition for box `x` to lie within a ∪ b, checked one dimension at a time: each
 * of its constraints within the union of theirs.
 */
export function mayCover(x: Box, a: Box, b: Box): boolean {
  for (const dim of new Set([...Object.keys(a), ...Object.keys(b)])) {
    const [ad, bd] = [a[dim], b[dim]];
    if (!ad || !bd) continue;
    const xd = x[dim] ?? everything;
    if (!within(xd, ad) && !within(xd, bd) && !within(xd, union(ad, bd))) return false;
  }
  return true;
}

function sameConstraint(a: Constraint | undefined, b: Constraint): boolean {
  if (a === b) return true;
  if (!a || a.nulls !== b.nulls || a.ranges.length !== b.ranges.length) return false;
  return a.ranges.every(
    ([lo, hi], index) =>
      compareCuts(lo, b.ranges[index]![0]) === 0 && compareCuts(hi, b.ranges[index]![1]) === 0,
  );
}

/**
 * The same boxes with equal constraints made one object, so that comparing them (the releases
 * read, most often the same few hundred ids in every cell) is a comparison of references.
 */
export function shareConstraints(boxes: readonly Box[]): Box[] {
  const known = new Map<string, Constraint>();
  return boxes.map((box) => {
    const shared: Box = {};
    for (const [dim, constraint] of Object.entries(box)) {
      const key = `${dim}\u0000${JSON.stringify(constraint)}`;
      shared[dim] = known.get(key) ?? constraint;
      known.set(key, shared[dim]);
    }
    return shared;
  });
}

export type Term = { coefficient: number; box: Box };

/**
 * What a signed sum of cells covers: where the sum of the coefficients of the cells a row lies
 * in is not zero. `region`: the sum is 1 there (or −1 everywhere it is not zero, then
 * `sign` −1), so the combination of the cells' figures is exactly the figure of that region;
 * `zero`: it is zero everywhere (the cells cancel out row by row, yet their patients need
 * not); `mixed`: anything else, which this ledger does not look into.
 */
export type Combination =
  { kind: 'region'; sign: 1 | -1; boxes: Box[] } | { kind: 'zero' } | { kind: 'mixed' };

export function combine(terms: readonly Term[]): Combination {
  const leaves: Box[] = [];
  let sign = 0;
  let mixed = false;
  const walk = (active: readonly Term[], dims: readonly string[], prefix: Box) => {
    if (mixed || active.length === 0) return;
    const constrained = dims.findIndex((dim) => active.some((term) => term.box[dim]));
    if (constrained === -1) {
      const value = active.reduce((sum, term) => sum + term.coefficient, 0);
      if (value === 0) return;
      if ((value !== 1 && value !== -1) || (sign !== 0 && value !== sign)) {
        mixed = true;
        return;
      }
      sign = value;
      leaves.push(prefix);
      return;
    }
    const dim = dims[constrained]!;
    const rest = dims.slice(constrained + 1);
    // Terms that all hold the same constraint here (the releases read, most often) are not cut:
    // the one piece lies in all of them (when it holds any value). Cutting the releases at every id made each combination
    // cost most of a millisecond.
    const shared = active[0]!.box[dim];
    if (
      shared &&
      !isEmpty(shared) &&
      active.every((term) => sameConstraint(term.box[dim], shared))
    ) {
      walk(active, rest, { ...prefix, [dim]: shared });
      return;
    }
    // The line cut at every end of every range of this dimension: each piece lies wholly in or
    // out of each term. Pieces in the same terms are walked together.
    const bounds = [start, end];
    for (const term of active)
      for (const range of term.box[dim]?.ranges ?? []) bounds.push(...range);
    bounds.sort(compareCuts);
    const groups = new Map<number, { terms: Term[]; ranges: Array<[Cut, Cut]>; nulls: boolean }>();
    const place = (piece: Constraint, range?: [Cut, Cut]) => {
      let mask = 0;
      const inside: Term[] = [];
      active.forEach((term, index) => {
        const set = term.box[dim];
        if (!set || within(piece, set)) {
          mask |= 1 << index;
          inside.push(term);
        }
      });
      if (mask === 0) return;
      const entry = groups.get(mask) ?? { terms: inside, ranges: [], nulls: false };
      if (range) {
        const last = entry.ranges.at(-1);
        if (last && compareCuts(last[1], range[0]) === 0) last[1] = range[1];
        else entry.ranges.push(range);
      } else entry.nulls = true;
      groups.set(mask, entry);
    };
    place(onlyNull);
    for (let index = 1; index < bounds.length; index += 1) {
      const range: [Cut, Cut] = [bounds[index - 1]!, bounds[index]!];
      if (compareCuts(range[0], range[1]) < 0) place({ ranges: [range], nulls: false }, range);
    }
    for (const { terms: inside, ranges, nulls } of groups.values()) {
      walk(inside, rest, { ...prefix, [dim]: { ranges, nulls } });
    }
  };
  const dims = [...new Set(terms.flatMap((term) => Object.keys(term.box)))].sort();
  walk(terms, dims, {});
  if (mixed) return { kind: 'mixed' };
  if (leaves.length === 0) return { kind: 'zero' };
  return { kind: 'region', sign: sign as 1 | -1, boxes: leaves };
}
