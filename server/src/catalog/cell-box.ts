/**
 * What a released cell covers, as the release ledger stores it beside the cell: a box, a
 * conjunction of one constraint per column (and the releases read). The geometry that works
 * with boxes is query/ledger/regions.ts; the types live here, below both it and the
 * repository that stores them, so that the catalog never imports the query core.
 *
 * Values are ordered (numbers, text, dates as milliseconds), so every constraint is a set of
 * ranges, plus whether NULL is in it. A range runs between two cuts: just below or just above
 * a value, or an end of the line, so that open and closed ends, points and gaps are the same
 * thing.
 */

export type Value = number | string;
/** −1: just below the value; +1: just above it. `inf` −1 and +1 are the ends of the line. */
export type Cut = { v: Value; s: -1 | 1 } | { inf: -1 | 1 };
export type Range = readonly [Cut, Cut];
/** A set of values of one column: its ranges (sorted, disjoint) and whether NULL is in it. */
export type Constraint = { ranges: Range[]; nulls: boolean };
/** A conjunction of constraints by dimension (a column, or `release`); absent means any. */
export type Box = Record<string, Constraint>;
