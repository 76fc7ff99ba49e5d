import type { QuerySpec } from '@medlake/shared';

/**
 * Sorts result rows by the spec's order, after disclosure control: suppressed values are empty
 * by then, so their order says nothing about their size. Empty values sort last either way.
 */
export function sortRows<T extends Record<string, unknown>>(
  rows: readonly T[],
  orderBy: QuerySpec['orderBy'],
): T[] {
  if (orderBy.length === 0) return [...rows];
  return [...rows].sort((a, b) => {
    for (const { by, direction } of orderBy) {
      const order = compareValues(a[by], b[by], direction);
      if (order !== 0) return order;
    }
    return 0;
  });
}

function compareValues(a: unknown, b: unknown, direction: 'asc' | 'desc'): number {
  const aEmpty = a === null || a === undefined;
  const bEmpty = b === null || b === undefined;
  if (aEmpty || bEmpty) return aEmpty === bEmpty ? 0 : aEmpty ? 1 : -1;
  const sign = direction === 'desc' ? -1 : 1;
  if (typeof a === 'number' && typeof b === 'number') return sign * (a - b);
  const left = String(a);
  const right = String(b);
  return sign * (left < right ? -1 : left > right ? 1 : 0);
}
