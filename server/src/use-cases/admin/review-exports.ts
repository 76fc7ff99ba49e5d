import { exportsRepository, type QueryExport } from '../../catalog/exports-repository.ts';
import { queryJobsRepository, type QueryJob } from '../../catalog/query-jobs-repository.ts';
import { usersRepository } from '../../catalog/users-repository.ts';
import { actorOf, type Caller } from '../../caller.ts';
import { AppError, notFound } from '../../errors.ts';
import type { Platform } from '../../platform.ts';

/** The airlock's queue of results (issue 27): held from every path until an admin decides. */
export async function listResultsForReview(
  platform: Platform,
): Promise<Array<QueryJob & { userEmail: string }>> {
  const pending = await queryJobsRepository(platform.catalog.db).pendingReview();
  const users = usersRepository(platform.catalog.db);
  return Promise.all(
    pending.map(async (job) => ({
      ...job,
      userEmail: (await users.byId(job.userId))?.email ?? 'unknown',
    })),
  );
}

/**
 * An admin's decision on a result held by the airlock, with a reason, audited. Approved, its
 * owner reads its pages and key points and exports it in any format; rejected, none of those
 * ever. Exports of it still waiting get the same decision. Nobody reviews their own.
 */
export async function reviewResult(
  platform: Platform,
  caller: Caller,
  queryId: string,
  decision: { approve: boolean; reason: string },
): Promise<void> {
  const jobs = queryJobsRepository(platform.catalog.db);
  const job = await jobs.get(queryId);
  if (!job || !job.review)
    throw notFound('query_not_found', `A result in the airlock with the query ${queryId}`);
  if (job.userId === caller.user.id) {
    throw new AppError(
      'own_review',
      'A result is reviewed by an admin other than the one who asked for it',
    );
  }
  const review = decision.approve ? 'approved' : 'rejected';
  const decided = { review, by: caller.user.id, reason: decision.reason } as const;
  if (!(await jobs.decideReview(queryId, decided))) {
    throw new AppError(
      'review_decided',
      `The result is not waiting for review: it is ${job.review.state.replace('_', ' ')}`,
    );
  }
  await exportsRepository(platform.catalog.db).decidePendingOfQuery(queryId, decided);
  await platform.audit.record({
    action: 'export.review',
    actor: actorOf(caller),
    target: `query:${queryId}`,
    details: { query: queryId, review, reason: decision.reason, scope: 'result' },
  });
}

/** The airlock's queue of exports made before results were reviewed as a whole. */
export async function listExportsForReview(
  platform: Platform,
): Promise<Array<QueryExport & { userEmail: string }>> {
  const pending = await exportsRepository(platform.catalog.db).pendingReview();
  const users = usersRepository(platform.catalog.db);
  return Promise.all(
    pending.map(async (item) => ({
      ...item,
      userEmail: (await users.byId(item.userId))?.email ?? 'unknown',
    })),
  );
}

/**
 * An admin's decision on an export waiting in the airlock, with a reason, audited. Approved,
 * its owner gets a download link the next time they ask for the export; rejected, never. Where
 * the result it was made from waits in the airlock too, the decision is the result's: every
 * path follows it.
 */
export async function reviewExport(
  platform: Platform,
  caller: Caller,
  id: string,
  decision: { approve: boolean; reason: string },
): Promise<void> {
  const exports = exportsRepository(platform.catalog.db);
  const item = await exports.get(id);
  if (!item) throw notFound('export_not_found', `Export ${id}`);
  if (item.userId === caller.user.id) {
    throw new AppError(
      'own_review',
      'An export is reviewed by an admin other than the one who asked for it',
    );
  }
  const job = await queryJobsRepository(platform.catalog.db).get(item.queryId);
  if (job?.review?.state === 'pending') {
    await reviewResult(platform, caller, item.queryId, decision);
    return;
  }
  const review = decision.approve ? 'approved' : 'rejected';
  if (!(await exports.decide(id, { review, by: caller.user.id, reason: decision.reason }))) {
    throw new AppError(
      'review_decided',
      `The export is not waiting for review: it is ${item.review}`,
    );
  }
  await platform.audit.record({
    action: 'export.review',
    actor: actorOf(caller),
    target: `export:${id}`,
    details: { query: item.queryId, review, reason: decision.reason },
  });
}
