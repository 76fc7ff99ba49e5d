import type { QueryJobView, QuerySummary } from '@medlake/shared';
import type { QueryJob } from '../catalog/query-jobs-repository.ts';
import { heldByAirlock, presentReview } from '../privacy/airlock.ts';
import type { ResultColumn } from './compile-query.ts';

/**
 * What leaves the server of a query job and its result rows. A result the airlock holds shows
 * no summary (its key points and counts are figures of the result), only the review's state.
 * Suppressed counts are shown as "suppressed", never as a number (nor as "<N": a group held
 * back by the release ledger, or a histogram bin hidden to protect another, may hold many
 * more); numbers stored as big integers become JSON numbers.
 */
export function presentQueryJob(job: QueryJob): QueryJobView {
  return {
    id: job.id,
    dataset: job.datasetId,
    status: job.status,
    spec: job.spec,
    specSha256: job.specSha256,
    engine: job.engine,
    releaseIds: job.releaseIds,
    createdAt: job.createdAt.toISOString(),
    startedAt: job.startedAt?.toISOString() ?? null,
    finishedAt: job.finishedAt?.toISOString() ?? null,
    progress: (job.progress as { percent: number } | null) ?? null,
    error: job.error,
    summary: heldByAirlock(job) ? null : ((job.summary as QuerySummary | null) ?? null),
    review: presentReview(job),
  };
}

const countFunctions = new Set(['count', 'patients']);
/** What a suppressed count shows, in the API, the web app and exports. */
export const suppressedCount = 'suppressed';

export function presentResultRow(
  row: Record<string, unknown>,
  columns: readonly ResultColumn[],
): Record<string, unknown> {
  const suppressed = row.suppressed === true;
  const presented: Record<string, unknown> = {};
  for (const column of columns) {
    const value = row[column.name];
    if (column.kind === 'measure' && suppressed) {
      presented[column.name] = countFunctions.has(column.fn ?? '') ? suppressedCount : null;
    } else if (column.type === 'histogram' && Array.isArray(value)) {
      presented[column.name] = (
        value as Array<{ bin: number; count: unknown; suppressed: boolean }>
      ).map((bin) => ({
        bin: Number(bin.bin),
        count: bin.suppressed ? suppressedCount : Number(bin.count),
      }));
    } else if (
      (column.type === 'integer' || column.type === 'smallint') &&
      typeof value === 'string'
    ) {
      presented[column.name] = Number(value);
    } else {
      presented[column.name] = value ?? null;
    }
  }
  if ('suppressed' in row) presented.suppressed = suppressed;
  return presented;
}
