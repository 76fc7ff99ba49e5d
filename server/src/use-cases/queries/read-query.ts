import { limitOf, type PageRequest, type QuerySummary, type ResultPage } from '@medlake/shared';
import { queryJobsRepository, type QueryJob } from '../../catalog/query-jobs-repository.ts';
import { usersRepository, type User } from '../../catalog/users-repository.ts';
import { actorOf, type Caller } from '../../caller.ts';
import { AppError } from '../../errors.ts';
import type { Platform } from '../../platform.ts';
import { assertOwnsQuery } from '../../policy.ts';
import { assertReleasedByAirlock } from '../../privacy/airlock.ts';
import { presentResultRow } from '../../query/present-result.ts';
import { freshMs } from '../../query/fresh-checks.ts';
import { cachedResultRows } from '../../query/result-cache.ts';
import { sortRows } from '../../query/sort-rows.ts';
import { listenForQueryEnd } from '../../query/query-events.ts';
import type { DatasetAccess } from '../../policy.ts';
import { storedResultRows } from './stored-result.ts';
import { currentDatasetAccess, lostResultAccess, requireDatasetAccess } from './dataset-access.ts';

export const maxPageSize = 1000;

/** The user's own query job; another user's is answered as not found. */
export async function getQuery(platform: Platform, user: User, id: string): Promise<QueryJob> {
  const job = await queryJobsRepository(platform.catalog.db).get(id);
  if (!job) throw new AppError('query_not_found', 'Query not found');
  assertOwnsQuery(user, job);
  return job;
}

/**
 * The query once it has finished, or as it is after `seconds`: a client long-polls instead of
 * asking again and again. A worker in this process announces the end at once; one in another
 * process is seen at the next look at the catalog.
 */
export async function waitForQuery(
  platform: Platform,
  user: User,
  id: string,
  seconds: number,
  /** The job as the caller just read or made it, so that the first look needs no read. */
  known?: QueryJob,
): Promise<QueryJob> {
  const deadline = Date.now() + seconds * 1000;
  let seen = known?.id === id && known.userId === user.id ? known : undefined;
  for (;;) {
    const end = listenForQueryEnd(id, Math.max(0, Math.min(250, deadline - Date.now())));
    const job = seen ?? (await getQuery(platform, user, id));
    seen = undefined;
    if ((job.status !== 'queued' && job.status !== 'running') || Date.now() >= deadline) {
      end.stop();
      return job;
    }
    // The worker announces the job as it ended; its owner was checked above.
    const ended = await end.finished;
    if (ended) return ended;
  }
}

/**
 * The user's jobs with the key points of each finished one left out where their access now does
 * not cover its result (a grant ended, row access or a hospital taken away). Key points are
 * data: like the result's pages and exports, they are read under a grant in force.
 */
export async function withResultsInReach(
  platform: Platform,
  user: User,
  jobs: readonly QueryJob[],
): Promise<QueryJob[]> {
  const access = new Map<string, DatasetAccess | undefined>();
  for (const job of jobs) {
    if (job.summary !== null && !access.has(job.datasetId)) {
      access.set(job.datasetId, await currentDatasetAccess(platform, user, job.datasetId));
    }
  }
  return jobs.map((job) => {
    if (job.summary === null) return job;
    const now = access.get(job.datasetId);
    return now && !lostResultAccess(job, now) ? job : { ...job, summary: null };
  });
}

/**
 * A job that a submit waited for, as its answer may show it. The submit checked the user's
 * access as the request began (`since`); an answer that comes later than such a check stands
 * for is shown under the user's access now (a grant revoked or narrowed, the account disabled
 * meanwhile), as GET /queries/:id shows it.
 */
export async function waitedResultInReach(
  platform: Platform,
  user: User,
  job: QueryJob,
  since: number,
): Promise<QueryJob> {
  if (job.status !== 'succeeded' || Date.now() - since <= freshMs) return job;
  const now = await usersRepository(platform.catalog.db).byId(user.id);
  const [shown] = now ? await withResultsInReach(platform, now, [job]) : [];
  return shown ?? { ...job, summary: null };
}

export async function listQueries(platform: Platform, user: User, page: PageRequest) {
  return queryJobsRepository(platform.catalog.db).listForUser(user.id, limitOf(page));
}

export async function cancelQuery(
  platform: Platform,
  caller: Caller,
  id: string,
): Promise<QueryJob> {
  await stopQuery(platform, caller, await getQuery(platform, caller.user, id));
  return getQuery(platform, caller.user, id);
}

/** An administrator stops anyone's query: one that holds the engine too long, say. */
export async function cancelAnyQuery(
  platform: Platform,
  caller: Caller,
  id: string,
): Promise<QueryJob> {
  const jobs = queryJobsRepository(platform.catalog.db);
  const job = await jobs.get(id);
  if (!job) throw new AppError('query_not_found', 'Query not found');
  await stopQuery(platform, caller, job);
  return (await jobs.get(id)) as QueryJob;
}

async function stopQuery(platform: Platform, caller: Caller, job: QueryJob): Promise<void> {
  if (job.status !== 'queued' && job.status !== 'running') return;
  await queryJobsRepository(platform.catalog.db).requestCancel(job.id);
  await platform.audit.record({
    action: 'query.cancel',
    actor: actorOf(caller),
    target: `query:${job.id}`,
    details: job.userId === caller.user.id ? {} : { owner: job.userId },
  });
}

/**
 * One page of a finished query's result, sorted on the server: the client never receives the
 * whole result. Sort columns must be columns of the result.
 */
export async function readResultPage(
  platform: Platform,
  user: User,
  id: string,
  request: { page: number; pageSize: number; sort?: { column: string; direction: 'asc' | 'desc' } },
): Promise<ResultPage> {
  const job = await getQuery(platform, user, id);
  // Results are data: reading them needs access to the dataset now, not only when the query
  // ran. An expired or revoked grant stops the pages too, and so does losing the part of it
  // the result was made under (row access, a hospital it read), as for its key points.
  const access = await requireDatasetAccess(platform, user, job.datasetId);
  const lost = lostResultAccess(job, access);
  if (lost) {
    throw new AppError(
      'access_lost',
      lost === 'row access'
        ? 'This result was made under row access, which you no longer have: run the query again under your current access'
        : 'This result holds data of a hospital you no longer have access to: run the query again under your current access',
    );
  }
  return resultPageOf(platform, job, request);
}

/**
 * A page of a job the caller has already read (and checked the user may see). Every page of a
 * result passes here, so that the airlock is checked whatever asks: nothing of a result it
 * holds is read, from the file, the catalog or memory (stored-result.ts).
 */
export async function resultPageOf(
  platform: Platform,
  job: QueryJob,
  request: { page: number; pageSize: number; sort?: { column: string; direction: 'asc' | 'desc' } },
): Promise<ResultPage> {
  if (job.status !== 'succeeded' || !job.resultKey) {
    throw new AppError('result_not_ready', `The query has no result yet: it is ${job.status}`);
  }
  assertReleasedByAirlock(job);
  const summary = job.summary as QuerySummary;
  const columns = summary.columns as Parameters<typeof presentResultRow>[1];
  const pageSize = Math.min(Math.max(1, request.pageSize), maxPageSize);
  const page = Math.max(1, request.page);
  if (request.sort && !columns.some((column) => column.name === request.sort?.column)) {
    throw new AppError('invalid_input', `${request.sort.column} is not a column of the result`, [
      { path: 'sort', message: `${request.sort.column} is not a column of the result` },
    ]);
  }
  const present = (rows: ReadonlyArray<Record<string, unknown>>): ResultPage => ({
    page,
    pageSize,
    totalRows: summary.rowCount,
    columns: summary.columns,
    rows: rows.map((row) => presentResultRow(row, columns)),
  });
  const cached = cachedResultRows(job.id) ?? (await storedResultRows(platform, job));
  if (cached) {
    const order = request.sort
      ? [{ by: request.sort.column, direction: request.sort.direction }]
      : [];
    return present(sortRows(cached, order).slice((page - 1) * pageSize, page * pageSize));
  }
  const { dialect } = platform.engine;
  const order = request.sort
    ? ` ORDER BY ${dialect.quoteIdentifier(request.sort.column)} ${request.sort.direction === 'desc' ? 'DESC' : 'ASC'} NULLS LAST`
    : '';
  const rows = await platform.engine.rows({
    sql: `SELECT * FROM ${dialect.scanParquet([platform.store.locate(job.resultKey)])} AS r${order} LIMIT ${dialect.placeholder(1)} OFFSET ${dialect.placeholder(2)}`,
    params: [pageSize, (page - 1) * pageSize],
  });
  return present(rows);
}
