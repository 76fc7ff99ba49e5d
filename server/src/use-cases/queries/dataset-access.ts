import type { QuerySummary } from '@medlake/shared';
import { grantsRepository, type Grant } from '../../catalog/grants-repository.ts';
import type { QueryJob } from '../../catalog/query-jobs-repository.ts';
import type { User } from '../../catalog/users-repository.ts';
import { AppError } from '../../errors.ts';
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
  /** The user's active grants on the dataset, where the caller has just read them. */
  grants?: readonly Grant[],
): Promise<DatasetAccess> {
  const access = grants
    ? datasetAccess(user, grants)
    : await currentDatasetAccess(platform, user, datasetId);
  if (!access) await assertNoGrantEnded(platform, user, datasetId);
  assertCanQuery(datasetId, access);
  return access;
}

/**
 * Refuses a user whose grant on the dataset has ended with the reason (grant_expired,
 * grant_revoked), so that a client can tell an ended grant from one never given.
 */
async function assertNoGrantEnded(platform: Platform, user: User, datasetId: string) {
  const ended = await grantsRepository(platform.catalog.db).lastEnded(
    user.id,
    datasetId,
    new Date(),
  );
  if (!ended || user.disabledAt !== null) return;
  const how = ended.revokedAt ? 'was revoked' : 'expired';
  const on = (ended.revokedAt ?? ended.expiresAt)?.toISOString().slice(0, 10);
  throw new AppError(
    ended.revokedAt ? 'grant_revoked' : 'grant_expired',
    `Your access to dataset ${datasetId} ${how} on ${on}. Request access again from an administrator.`,
  );
}

/**
 * What of the access a query's result was made under the holder has lost, as far as taking
 * the result out of the server goes (an export, a use of its download link), or undefined when
 * nothing: a row-level result, or any result computed under row access (which had none of the
 * noise or release ledger aggregate access gets), needs row access still; a result that read a
 * hospital's releases needs access to that hospital still.
 */
export function lostResultAccess(
  job: Pick<QueryJob, 'accessLevel' | 'summary'>,
  access: DatasetAccess,
): 'row access' | 'hospitals' | undefined {
  const summary = job.summary as QuerySummary | null;
  if ((job.accessLevel === 'row' || summary?.kind === 'rows') && access.level !== 'row') {
    return 'row access';
  }
  const granted = access.hospitals;
  if (granted && summary?.releases.hospitals.some((hospital) => !granted.includes(hospital))) {
    return 'hospitals';
  }
  return undefined;
}
