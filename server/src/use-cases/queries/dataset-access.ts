import { grantsRepository } from '../../catalog/grants-repository.ts';
import type { User } from '../../catalog/users-repository.ts';
import { assertCanQuery, datasetAccess, type DatasetAccess } from '../../policy.ts';
import type { Platform } from '../../platform.ts';

/** The user's access to the dataset now, from the catalog's grants; refused when there is none. */
export async function requireDatasetAccess(
  platform: Platform,
  user: User,
  datasetId: string,
): Promise<DatasetAccess> {
  const grants = await grantsRepository(platform.catalog.db).active(user.id, datasetId, new Date());
  const access = datasetAccess(user, grants);
  assertCanQuery(datasetId, access);
  return access;
}
