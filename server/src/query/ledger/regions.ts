/**
 * The release ledger's geometry: what a released cell covers, as a box (a conjunction of one
 * constraint per column, and the releases read), and what a signed combination of cells
 * covers. The box and its parts are types of catalog/cell-box.ts, where the repository that
 * stores them reads them too.
 */
import type { Box, Constraint, Cut, Range, Value } from '../../catalog/cell-box.ts';

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
  // Both sorted and disjoint: walked side by side, as two lists of hundreds of releases would
  // cost their product pair by pair. A range that ends first meets nothing after the other's.
  const ranges: Range[] = [];
  let i = 0;
  let j = 0;
  while (i < a.ranges.length && j < b.ranges.length) {
    const [alo, ahi] = a.ranges[i]!;
    const [blo, bhi] = b.ranges[j]!;
    const lo = compareCuts(alo, blo) >= 0 ? alo : blo;
    const hi = compareCuts(ahi, bhi) <= 0 ? ahi : bhi;
    if (compareCuts(lo, hi) < 0) ranges.push([lo, hi]);
    if (compareCuts(ahi, bhi) < 0) i += 1;
    else j += 1;
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

/** The index of the first of the sorted, disjoint ranges that ends at `cut` or after it. */
function firstEndingFrom(ranges: readonly Range[], cut: Cut): number {
  let lo = 0;
  let hi = ranges.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (compareCuts(ranges[mid]![1], cut) < 0) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/** Whether `inner` lies within `outer`: each of its ranges within one of outer's (merged) ranges. */
export function within(inner: Constraint, outer: Constraint): boolean {
  if (inner === outer) return true;
  if (inner.nulls && !outer.nulls) return false;
  const [first] = inner.ranges;
  // The releases read are hundreds of ranges: the first one to look at is found by halving,
  // so that a piece of the line is placed in a few steps rather than one per release.
  let j = first ? firstEndingFrom(outer.ranges, first[1]) : 0;
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

// Unions of two constraints already built, by the constraints themselves: the search asks
// for the same pair of releases read thousands of times, and constraints are never changed.
const unions = new WeakMap<Constraint, WeakMap<Constraint, Constraint>>();

function unionOfTwo(a: Constraint, b: Constraint): Constraint {
  let withA = unions.get(a);
  if (!withA) {
    withA = new WeakMap();
    unions.set(a, withA);
  }
  let both = withA.get(b);
  if (!both) {
    both = union(a, b);
    withA.set(b, both);
  }
  return both;
}

/** Two sorted lists of cuts as one sorted list, in one pass. */
function mergeCuts(a: readonly Cut[], b: readonly Cut[]): Cut[] {
  const merged: Cut[] = [];
  let i = 0;
  let j = 0;
  while (i < a.length || j < b.length) {
    if (j >= b.length || (i < a.length && compareCuts(a[i]!, b[j]!) <= 0)) merged.push(a[i++]!);
    else merged.push(b[j++]!);
  }
  return merged;
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
    if (!within(xd, ad) && !within(xd, bd) && !within(xd, unionOfTwo(ad, bd))) return false;
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
 * Keys of the constraints met, by the constraint: the ledger's pool holds the same cells check
 * after check (kept in memory as read), and writing each of their constraints out again, the
 * releases read most of all, was most of a repeated check's time. Constraints are not changed
 * once made (a narrower one is a new object).
 */
const constraintKeys = new WeakMap<Constraint, string>();

/** A constraint's identity: equal constraints, and only they, have the same key. */
export function constraintKey(constraint: Constraint): string {
  let key = constraintKeys.get(constraint);
  if (key === undefined) {
    key = JSON.stringify(constraint);
    constraintKeys.set(constraint, key);
  }
  return key;
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
      const key = `${dim}\u0000${constraintKey(constraint)}`;
      shared[dim] = known.get(key) ?? constraint;
      known.set(key, shared[dim]);
    }
    return shared;
  });
}

export type Term = { coefficient: number; box: Box };

/**
 * The values of the terms' constraints on `dim`, grouped by the terms each lies in, in order,
 * where every term's constraint there is a list of single values without NULL; undefined
 * otherwise. Between two values lies no term's row: such a piece is in no group.
 */
function groupsOfPoints(
  active: readonly Term[],
  dim: string,
): Array<{ terms: Term[]; ranges: Range[] }> | undefined {
  const masks = new Map<Value, number>();
  for (const [index, term] of active.entries()) {
    const set = term.box[dim];
    if (!set || set.nulls || !set.ranges.every(isPoint)) return undefined;
    for (const [lo] of set.ranges) {
      const value = (lo as { v: Value }).v;
      masks.set(value, (masks.get(value) ?? 0) | (1 << index));
    }
  }
  const groups = new Map<number, { terms: Term[]; ranges: Range[] }>();
  for (const value of [...masks.keys()].sort(compareValues)) {
    const mask = masks.get(value)!;
    let entry = groups.get(mask);
    if (!entry) {
      entry = { terms: active.filter((_, index) => mask & (1 << index)), ranges: [] };
      groups.set(mask, entry);
    }
    entry.ranges.push([below(value), above(value)]);
  }
  return [...groups.values()];
}

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
    // Lists of values only (the releases read, most often): each value alone is a piece, and
    // the line between them lies in no term. Grouped by the terms each value lies in, without
    // cutting the line at both ends of every value and placing each piece in turn.
    const byValue = groupsOfPoints(active, dim);
    if (byValue) {
      for (const { terms: inside, ranges } of byValue) {
        walk(inside, rest, { ...prefix, [dim]: { ranges, nulls: false } });
      }
      return;
    }
    // The line cut at every end of every range of this dimension: each piece lies wholly in or
    // out of each term. Pieces in the same terms are walked together.
    let bounds = [start, end];
    for (const term of active) bounds = mergeCuts(bounds, term.box[dim]?.ranges.flat() ?? []);
    // Merging needs each constraint in its normal form; one that is not is sorted as before.
    if (bounds.some((cut, index) => index > 0 && compareCuts(bounds[index - 1]!, cut) > 0)) {
      bounds.sort(compareCuts);
    }
    const groups = new Map<number, { terms: Term[]; ranges: Array<[Cut, Cut]>; nulls: boolean }>();
    const place = (holds: (set: Constraint, index: number) => boolean, range?: [Cut, Cut]) => {
      let mask = 0;
      active.forEach((term, index) => {
        const set = term.box[dim];
        if (!set || holds(set, index)) mask |= 1 << index;
      });
      if (mask === 0) return;
      let entry = groups.get(mask);
      if (!entry) {
        entry = {
          terms: active.filter((_, index) => mask & (1 << index)),
          ranges: [],
          nulls: false,
        };
        groups.set(mask, entry);
      }
      if (range) {
        const last = entry.ranges.at(-1);
        if (last && compareCuts(last[1], range[0]) === 0) last[1] = range[1];
        else entry.ranges.push(range);
      } else entry.nulls = true;
    };
    place((set) => set.nulls);
    // The pieces come in order, so each term's ranges are walked once alongside them: `next`
    // holds, per term, the first of its ranges that does not end before the piece does.
    const next = active.map(() => 0);
    for (let index = 1; index < bounds.length; index += 1) {
      const range: [Cut, Cut] = [bounds[index - 1]!, bounds[index]!];
      if (compareCuts(range[0], range[1]) >= 0) continue;
      place((set, term) => {
        let j = next[term]!;
        while (j < set.ranges.length && compareCuts(set.ranges[j]![1], range[1]) < 0) j += 1;
        next[term] = j;
        return j < set.ranges.length && compareCuts(set.ranges[j]![0], range[0]) <= 0;
      }, range);
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
