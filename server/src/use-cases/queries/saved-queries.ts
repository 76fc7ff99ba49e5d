import { randomUUID } from 'node:crypto';
import {
  limitOf,
  type NewSavedQuery,
  type PageRequest,
  type SavedQueryChange,
} from '@medlake/shared';
import { actorOf, type Caller } from '../../caller.ts';
import { projectsRepository } from '../../catalog/projects-repository.ts';
import { savedQueriesRepository, type SavedQuery } from '../../catalog/saved-queries-repository.ts';
import type { User } from '../../catalog/users-repository.ts';
import { notFound } from '../../errors.ts';
import type { Platform } from '../../platform.ts';
import { assertOwnsSavedQuery, assertProjectMember } from '../../policy.ts';
import { checkQuerySpec } from './submit-query.ts';

/**
 * Keeps a query spec under a name, for its author or shared with one of their projects. The
 * spec is checked as a submit would check it, so that what is saved can be run.
 */
export async function saveQuery(
  platform: Platform,
  caller: Caller,
  wanted: NewSavedQuery,
): Promise<SavedQuery> {
  const { spec } = await checkQuerySpec(platform, caller.user, wanted.spec);
  if (wanted.projectId) {
    const projects = await projectsRepository(platform.catalog.db).listOfMember(caller.user.id);
    assertProjectMember(wanted.projectId, projects);
  }
  const id = randomUUID();
  await platform.catalog.db.transaction().execute(async (trx) => {
    await savedQueriesRepository(trx).create({
      id,
      userId: caller.user.id,
      projectId: wanted.projectId ?? null,
      datasetId: spec.dataset,
      name: wanted.name,
      description: wanted.description,
      spec,
    });
    await platform.audit.record(
      {
        action: 'saved_query.create',
        actor: actorOf(caller),
        target: `saved-query:${id}`,
        details: { dataset: spec.dataset, project: wanted.projectId ?? null },
      },
      trx,
    );
  });
  return readSavedQuery(platform, caller.user, id);
}

/** One saved query the user may see (their own, or shared with one of their projects). */
export async function readSavedQuery(
  platform: Platform,
  user: User,
  id: string,
): Promise<SavedQuery> {
  const found = await savedQueriesRepository(platform.catalog.db).getVisible(id, user.id);
  if (!found) throw notFound('saved_query_not_found', 'Saved query');
  return found;
}

export async function listSavedQueries(platform: Platform, user: User, page: PageRequest) {
  return savedQueriesRepository(platform.catalog.db).listVisible(user.id, limitOf(page));
}

/**
 * Renames a saved query, changes its description or whom it is shared with, or replaces its
 * spec (checked as a save checks it); only its author may.
 */
export async function updateSavedQuery(
  platform: Platform,
  caller: Caller,
  id: string,
  change: SavedQueryChange,
): Promise<SavedQuery> {
  const found = await readSavedQuery(platform, caller.user, id);
  assertOwnsSavedQuery(caller.user, found);
  const spec =
    change.spec === undefined
      ? undefined
      : (await checkQuerySpec(platform, caller.user, change.spec)).spec;
  if (change.projectId) {
    const projects = await projectsRepository(platform.catalog.db).listOfMember(caller.user.id);
    assertProjectMember(change.projectId, projects);
  }
  await platform.catalog.db.transaction().execute(async (trx) => {
    await savedQueriesRepository(trx).update(id, {
      ...(change.name !== undefined ? { name: change.name } : {}),
      ...(change.description !== undefined ? { description: change.description } : {}),
      ...(change.projectId !== undefined ? { projectId: change.projectId } : {}),
      ...(spec ? { spec, datasetId: spec.dataset } : {}),
    });
    await platform.audit.record(
      {
        action: 'saved_query.update',
        actor: actorOf(caller),
        target: `saved-query:${id}`,
        details: {
          changed: Object.keys(change).sort(),
          ...(change.projectId !== undefined ? { project: change.projectId } : {}),
        },
      },
      trx,
    );
  });
  return readSavedQuery(platform, caller.user, id);
}

/** Deletes a saved query; only its author may. */
export async function deleteSavedQuery(
  platform: Platform,
  caller: Caller,
  id: string,
): Promise<void> {
  const found = await readSavedQuery(platform, caller.user, id);
  assertOwnsSavedQuery(caller.user, found);
  await platform.catalog.db.transaction().execute(async (trx) => {
    await savedQueriesRepository(trx).delete(id);
    await platform.audit.record(
      {
        action: 'saved_query.delete',
        actor: actorOf(caller),
        target: `saved-query:${id}`,
      },
      trx,
    );
  });
}
