/**
 * A release too large to sort at once within an engine's memory is cut into ranges of its
 * sort key, each small enough to sort alone, and written a range at a time: the files together
 * are in the order of the whole. Ranges follow the first sort column (the code), so that a
 * code's rows stay together; a code with more rows than one range may hold is cut further by
 * the second column (the event date).
 */

/** How many rows hold one value of the first sort column (NULL for empty), in sort order. */
export type KeyCount = { key: string | null; rows: number };

/**
 * Rows whose first sort column lies from `from` to `to`, both included; a `from` of null takes
 * the empty values too, which sort first. With `within`, only those of the one value `from`
 * whose second sort column is at or after `after` (from the first, empty ones included, when
 * absent) and before `before` (to the last, when absent).
 */
export type SortRange = {
  from: string | null;
  to: string | null;
  rows: number;
  within?: { after?: string; before?: string };
};

/**
 * Consecutive values of the first sort column, grouped into ranges of at most `budget` rows;
 * a value with more rows than that is a range of its own, marked `split` so that the caller
 * can cut it by the second column.
 */
export function groupKeys(
  counts: readonly KeyCount[],
  budget: number,
): Array<SortRange & { split: boolean }> {
  const ranges: Array<SortRange & { split: boolean }> = [];
  for (const { key, rows } of counts) {
    const last = ranges.at(-1);
    if (last && !last.split && last.rows + rows <= budget) {
      last.to = key;
      last.rows += rows;
    } else {
      ranges.push({ from: key, to: key, rows, split: rows > budget });
    }
  }
  return ranges;
}

/**
 * One value's range cut at the given values of the second column (ascending, distinct): the
 * first part takes its empty values and everything before the first cut.
 */
export function splitKey(range: SortRange, cuts: readonly string[]): SortRange[] {
  if (cuts.length === 0) return [{ ...range }];
  const bounds = [undefined, ...cuts, undefined];
  const rows = Math.ceil(range.rows / (cuts.length + 1));
  return bounds.slice(0, -1).map((after, index) => {
    const before = bounds[index + 1];
    return {
      from: range.from,
      to: range.to,
      rows,
      within: {
        ...(after !== undefined ? { after } : {}),
        ...(before !== undefined ? { before } : {}),
      },
    };
  });
}

/** The fractions at which to cut a value of `rows` rows so that each part holds `budget`. */
export function cutFractions(rows: number, budget: number): number[] {
  const parts = Math.ceil(rows / Math.max(budget, 1));
  return Array.from({ length: parts - 1 }, (_, index) => (index + 1) / parts);
}

/**
 * A range as a condition on the two sort columns (SQL); `literal` makes a value of the named
 * column into SQL of that column's type.
 */
export function rangeCondition(
  range: SortRange,
  columns: { first: string; second?: string },
  literal: (column: 'first' | 'second', value: string) => string,
): string {
  const { first, second } = columns;
  const parts: string[] = [];
  if (range.from === null) {
    parts.push(
      range.to === null
        ? `${first} IS NULL`
        : `(${first} IS NULL OR ${first} <= ${literal('first', range.to)})`,
    );
  } else if (range.from === range.to) {
    parts.push(`${first} = ${literal('first', range.from)}`);
  } else {
    parts.push(`${first} >= ${literal('first', range.from)}`);
    if (range.to !== null) parts.push(`${first} <= ${literal('first', range.to)}`);
  }
  if (range.within && second) {
    const { after, before } = range.within;
    if (after !== undefined) parts.push(`${second} >= ${literal('second', after)}`);
    // Empty values sort first: the first part of a value (no `after`) takes them.
    if (before !== undefined) {
      const earlier = `${second} < ${literal('second', before)}`;
      parts.push(after === undefined ? `(${second} IS NULL OR ${earlier})` : earlier);
    }
  }
  return parts.join(' AND ');
}
