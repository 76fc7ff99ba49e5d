import type { TokenScope } from '@medlake/shared';
import type { Catalog } from './catalog.ts';
import { datasetsRepository, type Dataset } from './datasets-repository.ts';
import type { Grant } from './grants-repository.ts';
import type { CatalogTable } from './held-reads.ts';
import {
  hashToken,
  looksLikeToken,
  usedAt,
  usersRepository,
  type TokenHolder,
  type User,
} from './users-repository.ts';

/**
 * What every query reads of the catalog before its engine starts, held in memory where this
 * process owns the catalog (held-reads.ts) and read from the catalog each time elsewhere. A
 * held fact never answers for the clock: expiries are checked here at each use.
 */

/** The tables a token's holder is read from: a token revoked or a user disabled drops it. */
export const tokenTables: readonly CatalogTable[] = ['api_tokens', 'users'];

/**
 * The tables a dataset and a user's grants on it are read from: a grant added, revoked or
 * changed, a project's members, the dataset's contract.
 */
export const accessTables: readonly CatalogTable[] = [
  'datasets',
  'dataset_grants',
  'project_members',
  'projects',
];

/** The active user an API token belongs to, and its scopes, at `now`; none for a token not good then. */
export async function userOfToken(
  catalog: Pick<Catalog, 'db' | 'held'>,
  token: string,
  now: Date,
): Promise<{ user: User; scopes: TokenScope[] } | undefined> {
  const users = usersRepository(catalog.db);
  if (!catalog.held) return users.byToken(token, now);
  if (!looksLikeToken(token)) return undefined;
  const hash = hashToken(token);
  const holder = await catalog.held.read(`token\u0000${hash}`, tokenTables, async () =>
    frozenHolder(await users.tokenHolder(hash)),
  );
  return usedAt(users, holder, now);
}

/** The dataset and the grants the user holds on it in force at `now`; none for no dataset. */
export async function datasetWithGrants(
  catalog: Pick<Catalog, 'db' | 'held'>,
  datasetId: string,
  userId: string,
  now: Date,
): Promise<{ dataset: Dataset; grants: Grant[] } | undefined> {
  const datasets = datasetsRepository(catalog.db);
  if (!catalog.held) return datasets.getWithActiveGrants(datasetId, userId, now);
  const found = await catalog.held.read(
    `access\u0000${datasetId}\u0000${userId}`,
    accessTables,
    async () => {
      const read = await datasets.getWithUnrevokedGrants(datasetId, userId);
      return read && { dataset: Object.freeze(read.dataset), grants: read.grants.map(frozenGrant) };
    },
  );
  if (!found) return undefined;
  const inForce = (grant: Grant) =>
    grant.expiresAt === null || grant.expiresAt.getTime() > now.getTime();
  return { dataset: found.dataset, grants: found.grants.filter(inForce) };
}

/** Held facts are shared by every request that reads them: none may change one. */
function frozenHolder(holder: TokenHolder | undefined): TokenHolder | undefined {
  if (!holder) return undefined;
  return Object.freeze({
    ...holder,
    user: Object.freeze(holder.user),
    scopes: Object.freeze(holder.scopes) as TokenScope[],
  });
}

function frozenGrant(grant: Grant): Grant {
  return Object.freeze({
    ...grant,
    hospitals: grant.hospitals && (Object.freeze(grant.hospitals) as string[]),
  });
}
