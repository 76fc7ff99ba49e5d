import type { QuerySummary } from '@medlake/shared';
import { grantsRepository } from '../../catalog/grants-repository.ts';
import type { QueryJob } from '../../catalog/query-jobs-repository.ts';
import type { User } from '../../catalog/users-repository.ts';
import { assertCanQuery, datasetAccess, type DatasetAccess } from '../../policy.ts';
import type { Platform } from '../../platform.ts';

/** The user's access to the dataset now, from the catalog's grants; undefined when there is none. */
export async function currentDatasetAccess(
  platform: Platform,
  user: User,
  datasetId: string,
): Promise<DatasetAccess | undefined> {
  const grants = await grantsRepository(platform.catalog.db).active(user.id, datasetId, new Date());
  return datasetAccess(user, grants);
}

/** The user's access to the dataset now, from the catalog's grants; refused when there is none. */
export async function requireDatasetAccess(
  platform: Platform,
  user: User,
  datasetId: string,
): Promise<DatasetAccess> {
  const access = await currentDatasetAccess(platform, user, datasetId);
  assertCanQuery(datasetId, access);
  return access;
}

/**
 * Whether a query's result needs row access to leave the server: a row-level result, and any
 * result computed under row access, which had none of the noise or release ledger that
 * aggregate access gets.
 */
export function resultNeedsRowAccess(job: Pick<QueryJob, 'accessLevel' | 'summary'>): boolean {
  return job.accessLevel === 'row' || (job.summary as QuerySummary | null)?.kind === 'rows';
}
