import { exportsRepository, type QueryExport } from '../../catalog/exports-repository.ts';
import { usersRepository } from '../../catalog/users-repository.ts';
import { actorOf, type Caller } from '../../caller.ts';
import { AppError, notFound } from '../../errors.ts';
import type { Platform } from '../../platform.ts';

/** The airlock's queue: exports that failed an output check, with who asked for them. */
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
 * its owner gets a download link the next time they ask for the export; rejected, never.
 */
export async function reviewExport(
  platform: Platform,
  caller: Caller,
  id: string,
  decision: { approve: boolean; reason: string },
): Promise<void> {
  const exports = exportsRepository(platform.catalog.db);
  const item = await exports.get(id);
  if (!item) throw notFound(`Export ${id}`);
  if (item.userId === caller.user.id) {
    throw new AppError(
      'FORBIDDEN',
      'An export is reviewed by an admin other than the one who asked for it',
    );
  }
  const review = decision.approve ? 'approved' : 'rejected';
  if (!(await exports.decide(id, { review, by: caller.user.id, reason: decision.reason }))) {
    throw new AppError('CONFLICT', `The export is not waiting for review: it is ${item.review}`);
  }
  await platform.audit.record({
    action: 'export.review',
    actor: actorOf(caller),
    target: `export:${id}`,
    details: { query: item.queryId, review, reason: decision.reason },
  });
}
