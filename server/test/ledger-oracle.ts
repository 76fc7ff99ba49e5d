/**
 * The release ledger's geometry worked out point by point: an oracle for the tests of
 * server/src/query/ledger. Each dimension is cut into the values its boxes tell apart, and a
 * signed sum of cells is evaluated at one value of every piece. Slow, and plainly right: it
 * shares no code with regions.ts beyond the types.
 */
import type { Box, Constraint, Cut, Value } from '../src/query/ledger/regions.ts';

type Point = Record<string, Value | null>;

/** Whether cut `cut` lies below the value `value` (a cut sits between values, never on one). */
function cutBelow(cut: Cut, value: Value): boolean {
  if ('inf' in cut) return cut.inf === -1;
  if (typeof cut.v !== typeof value) return typeof cut.v === 'number';
  return cut.v < value || (cut.v === value && cut.s === -1);
}

export function holds(constraint: Constraint | undefined, value: Value | null): boolean {
  if (!constraint) return true;
  if (value === null) return constraint.nulls;
  return constraint.ranges.some(([lo, hi]) => cutBelow(lo, value) && !cutBelow(hi, value));
}

export const boxHolds = (box: Box, point: Point) =>
  Object.entries(box).every(([dim, constraint]) => holds(constraint, point[dim] ?? null));

/**
 * Values of one dimension that every constraint there treats alike on either side: each value a
 * constraint names, one just above it and one below them all, and NULL.
 */
function valuesToTry(constraints: readonly Constraint[]): Array<Value | null> {
  const named = [
    ...new Set(
      constraints.flatMap((c) => c.ranges.flat().flatMap((cut) => ('v' in cut ? [cut.v] : []))),
    ),
  ];
  const numbers = named.filter((v): v is number => typeof v === 'number').sort((a, b) => a - b);
  const strings = named.filter((v): v is string => typeof v === 'string').sort();
  const tried: Array<Value | null> = [null, ...numbers, ...strings];
  numbers.forEach((v, index) =>
    tried.push(index + 1 < numbers.length ? (v + numbers[index + 1]!) / 2 : v + 1),
  );
  if (numbers.length > 0) tried.push(numbers[0]! - 1);
  // Just above a string comes the same string with a NUL after it, and before them all ''.
  for (const v of strings) tried.push(`${v}\u0000`);
  tried.push(strings.length > 0 ? '' : 0);
  return tried;
}

/**
 * One point for every way the boxes can hold a row: per dimension, one value for each set of
 * boxes that hold it there, and every combination of those across the dimensions.
 */
export function pointsToTry(boxes: readonly Box[]): Point[] {
  const dims = [...new Set(boxes.flatMap((box) => Object.keys(box)))].sort();
  let found: Point[] = [{}];
  for (const dim of dims) {
    const constraints = boxes.map((box) => box[dim]);
    const bySignature = new Map<string, Value | null>();
    for (const value of valuesToTry(constraints.filter((c) => c !== undefined))) {
      const signature = constraints.map((c) => (holds(c, value) ? 1 : 0)).join('');
      if (!bySignature.has(signature)) bySignature.set(signature, value);
    }
    found = found.flatMap((point) =>
      [...bySignature.values()].map((value) => ({ ...point, [dim]: value })),
    );
  }
  return found;
}

export type Term = { coefficient: number; box: Box };

export type OracleCombination =
  | { kind: 'region'; sign: 1 | -1; inRegion: (point: Point) => boolean }
  | { kind: 'zero' }
  | { kind: 'mixed' };

/** The sum of the coefficients of the terms whose boxes hold the point. */
const sumAt = (terms: readonly Term[], point: Point) =>
  terms.reduce((sum, term) => sum + (boxHolds(term.box, point) ? term.coefficient : 0), 0);

/** What a signed sum of cells covers, evaluated at every point that tells the terms apart. */
export function combineAtPoints(terms: readonly Term[]): OracleCombination {
  const points = pointsToTry(terms.map((term) => term.box));
  const values = points.map((point) => sumAt(terms, point));
  const nonZero = new Set(values.filter((value) => value !== 0));
  if (nonZero.size === 0) return { kind: 'zero' };
  const [only] = nonZero;
  if (nonZero.size > 1 || (only !== 1 && only !== -1)) return { kind: 'mixed' };
  return {
    kind: 'region',
    sign: only,
    inRegion: (point) => sumAt(terms, point) === only,
  };
}

/** Whether two boxes hold a row in common. */
export const boxesShare = (a: Box, b: Box) =>
  pointsToTry([a, b]).some((point) => boxHolds(a, point) && boxHolds(b, point));

/** Whether every row of `box` (and at least one) lies where the terms sum to `sign`. */
export function lyingWholly(box: Box, terms: readonly Term[], sign: number): boolean {
  const inside = pointsToTry([box, ...terms.map((term) => term.box)]).filter((point) =>
    boxHolds(box, point),
  );
  return inside.length > 0 && inside.every((point) => sumAt(terms, point) === sign);
}
