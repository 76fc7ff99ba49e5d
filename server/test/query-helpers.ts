import { readFile } from 'node:fs/promises';
import type { QueryJobView, ResultPage } from '@medlake/shared';
import type { User } from '../src/catalog/users-repository.ts';
import { queryJobsRepository } from '../src/catalog/query-jobs-repository.ts';
import { createLogger } from '../src/logger.ts';
import type { Platform } from '../src/platform.ts';
import { presentQueryJob } from '../src/query/present-result.ts';
import { executeQueryJob } from '../src/use-cases/queries/query-worker.ts';
import { getQuery, readResultPage } from '../src/use-cases/queries/read-query.ts';
import { createProject, setProjectMember } from '../src/use-cases/access/projects.ts';
import { addUser, grantDatasetAccess } from '../src/use-cases/manage-access.ts';
import { saveDataset } from '../src/use-cases/manage-datasets.ts';
import { submitQuery } from '../src/use-cases/queries/submit-query.ts';
import { createTestPlatform, testActor, type TestPlatform } from './helper.ts';
import { contractFile } from './ingest-helpers.ts';
import { publishSyntheticLabResults } from './synthetic-lake.ts';

/**
 * Submits a query as the user and runs it in the foreground, as `medlake query` does. Returns
 * the finished job and the whole result, read page by page through the same use-case as the API.
 */
export async function runQuery(
  platform: Platform,
  user: User,
  spec: unknown,
  options: { sort?: { column: string; direction: 'asc' | 'desc' } } = {},
): Promise<{ job: QueryJobView; rows: ResultPage['rows'] }> {
  const submitted = await submitQuery(platform, { user, source: 'test' }, spec);
  const claimed = await queryJobsRepository(platform.catalog.db).claim('test-worker', submitted.id);
  if (!claimed) throw new Error('the submitted job could not be claimed');
  await executeQueryJob(platform, claimed, 'test-worker', { logger: createLogger('silent') });
  const job = presentQueryJob(await getQuery(platform, user, submitted.id));
  // A result the airlock holds shows no summary and no rows.
  if (job.status !== 'succeeded' || !job.summary) return { job, rows: [] };
  const rows: ResultPage['rows'] = [];
  for (let page = 1; ; page += 1) {
    const result = await readResultPage(platform, user, job.id, {
      page,
      pageSize: 1000,
      ...options,
    });
    rows.push(...result.rows);
    if (result.rows.length < result.pageSize) break;
  }
  return { job, rows };
}

/** A researcher with a grant on the dataset at the given level. */
export async function researcherWithAccess(
  platform: Platform,
  email: string,
  datasetId: string,
  level: 'aggregate' | 'row',
): Promise<User> {
  const user = await addUser(platform, testActor, { email, name: email, role: 'researcher' });
  await grantDatasetAccess(platform, testActor, { email, datasetId, level });
  return user;
}

/**
 * A test platform holding the shipped lab-results dataset over a synthetic lake of it
 * (synthetic-lake.ts), for tests whose queries need many rows or take a while.
 */
export async function createSyntheticLabPlatform(
  lake: Parameters<typeof publishSyntheticLabResults>[2],
): Promise<TestPlatform> {
  const platform = await createTestPlatform();
  const contract = JSON.parse(await readFile(contractFile('lab-results'), 'utf8'));
  await publishSyntheticLabResults(platform, await saveDataset(platform, contract), lake);
  return platform;
}

/**
 * A project with a row-level grant on the dataset, and a new researcher for each e-mail as its
 * members: they see its data under the project's own pseudonyms. Returns the members by e-mail.
 */
export async function projectOfResearchers(
  platform: Platform,
  project: string,
  datasetId: string,
  emails: readonly string[],
): Promise<Record<string, User>> {
  await createProject(platform, testActor, { id: project, name: project });
  await grantDatasetAccess(platform, testActor, { projectId: project, datasetId, level: 'row' });
  const members: Record<string, User> = {};
  for (const email of emails) {
    members[email] = await addUser(platform, testActor, { email, name: email, role: 'researcher' });
    await setProjectMember(platform, testActor, { projectId: project, email, member: true });
  }
  return members;
}
