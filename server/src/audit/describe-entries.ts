import type { CatalogDb } from '../catalog/catalog.ts';
import type { AuditEntry } from './audit-log.ts';

const uuidPattern = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/**
 * Readable names for the ids audit entries hold, looked up when the log is read (so that a
 * user is named by the e-mail they have now): users, grants, datasets, projects and queries, by
 * "kind:id" as targets carry them and by bare id for users named in an entry's actor or details.
 * An id that no longer resolves is left out; the entry keeps the id itself.
 */
export async function describeAuditEntries(
  db: CatalogDb,
  entries: readonly AuditEntry[],
): Promise<Map<string, string>> {
  const wanted = { user: new Set<string>(), grant: new Set<string>(), dataset: new Set<string>() };
  const projects = new Set<string>();
  const queries = new Set<string>();
  for (const entry of entries) {
    if (entry.actorId) wanted.user.add(entry.actorId);
    const [kind, id] = splitTarget(entry.target);
    if (kind === 'user' && id && uuidPattern.test(id)) wanted.user.add(id);
    if (kind === 'grant' && id && uuidPattern.test(id)) wanted.grant.add(id);
    if (kind === 'dataset' && id) wanted.dataset.add(id);
    if (kind === 'project' && id) projects.add(id);
    if (kind === 'query' && id && uuidPattern.test(id)) queries.add(id);
    for (const key of ['user', 'userId', 'owner']) {
      const value = entry.details[key];
      if (typeof value === 'string' && uuidPattern.test(value)) wanted.user.add(value);
    }
    const project = entry.details.project;
    if (typeof project === 'string') projects.add(project);
    const dataset = entry.details.dataset;
    if (typeof dataset === 'string') wanted.dataset.add(dataset);
  }

  const grants =
    wanted.grant.size === 0
      ? []
      : await db
          .selectFrom('dataset_grants')
          .select(['id', 'user_id', 'project_id', 'dataset_id', 'level'])
          .where('id', 'in', [...wanted.grant])
          .execute();
  for (const grant of grants) {
    if (grant.user_id) wanted.user.add(grant.user_id);
    if (grant.project_id) projects.add(grant.project_id);
  }
  const jobs =
    queries.size === 0
      ? []
      : await db
          .selectFrom('query_jobs')
          .select(['id', 'user_id', 'dataset_id'])
          .where('id', 'in', [...queries])
          .execute();
  for (const job of jobs) wanted.dataset.add(job.dataset_id);

  const names = new Map<string, string>();
  if (wanted.user.size > 0) {
    const users = await db
      .selectFrom('users')
      .select(['id', 'email'])
      .where('id', 'in', [...wanted.user])
      .execute();
    for (const user of users) {
      names.set(user.id, user.email);
      names.set(`user:${user.id}`, user.email);
    }
  }
  if (wanted.dataset.size > 0) {
    const datasets = await db
      .selectFrom('datasets')
      .select(['id', 'title'])
      .where('id', 'in', [...wanted.dataset])
      .execute();
    for (const dataset of datasets) names.set(`dataset:${dataset.id}`, dataset.title);
  }
  if (projects.size > 0) {
    const found = await db
      .selectFrom('projects')
      .select(['id', 'name'])
      .where('id', 'in', [...projects])
      .execute();
    for (const project of found) names.set(`project:${project.id}`, `project ${project.name}`);
  }
  for (const grant of grants) {
    const holder = grant.user_id
      ? (names.get(grant.user_id) ?? 'a user')
      : (names.get(`project:${grant.project_id}`) ?? `project ${grant.project_id}`);
    const dataset = names.get(`dataset:${grant.dataset_id}`) ?? grant.dataset_id;
    names.set(`grant:${grant.id}`, `${grant.level} grant of ${dataset} to ${holder}`);
  }
  for (const job of jobs) {
    const dataset = names.get(`dataset:${job.dataset_id}`) ?? job.dataset_id;
    const owner = names.get(job.user_id);
    names.set(`query:${job.id}`, `query on ${dataset}${owner ? ` by ${owner}` : ''}`);
  }
  return names;
}

function splitTarget(target: string | null): [string | undefined, string | undefined] {
  if (!target) return [undefined, undefined];
  const colon = target.indexOf(':');
  return colon < 0 ? [undefined, undefined] : [target.slice(0, colon), target.slice(colon + 1)];
}
