import type { DisclosedRow } from './disclosure.ts';

/**
 * The rows of recently finished aggregate results, kept in memory by the process that made
 * them, so that their first pages need no trip to the stored file. The stored Parquet stays
 * the source of truth: another process, or a result that has dropped out of here, reads it.
 */
const entries = new Map<string, readonly DisclosedRow[]>();
const maxEntries = 200;
/** Only small results are kept: a result of more rows is paged from its file. */
export const maxCachedRows = 10_000;

export function rememberResultRows(jobId: string, rows: readonly DisclosedRow[]): void {
  if (rows.length > maxCachedRows) return;
  if (entries.size >= maxEntries) entries.delete(entries.keys().next().value ?? '');
  entries.set(jobId, rows);
}

export function cachedResultRows(jobId: string): readonly DisclosedRow[] | undefined {
  return entries.get(jobId);
}

/** Drops a result from memory; its pages are then read from the stored file. */
export function forgetResultRows(jobId: string): void {
  entries.delete(jobId);
}
