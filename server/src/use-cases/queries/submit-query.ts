import { createHash, randomUUID } from 'node:crypto';
import { sql } from 'kysely';
import { canonicalJson, querySpecSchema, type QueryCost, type QuerySpec } from '@medlake/shared';
import { datasetWithGrants } from '../../catalog/held-facts.ts';
import {
  queryJobsRepository,
  type NewQueryJob,
  type QueryJob,
} from '../../catalog/query-jobs-repository.ts';
import { actorOf, type Caller } from '../../caller.ts';
import { AppError, notFound } from '../../errors.ts';
import type { Platform } from '../../platform.ts';
import type { User } from '../../catalog/users-repository.ts';
import { assertSpecAllowed } from '../../policy.ts';
import { codeSetCodes, loadCodeSets } from '../../query/code-sets.ts';
import { compileQuery } from '../../query/compile-query.ts';
import { rememberSubmitChecks } from '../../query/fresh-checks.ts';
import { planQuery } from '../../query/plan-query.ts';
import { queryColumns } from '../../query/query-columns.ts';
import { nestingDepth, zodIssues } from '../../validation.ts';
import { assertAffordable } from '../../privacy/noisy-answers.ts';
import { requireDatasetAccess } from './dataset-access.ts';
import { reserveQueryRun } from './query-worker.ts';
import { priceOfQuery } from './run-query-job.ts';

const maxSpecDepth = 40;

/** The class of the advisory locks one user's submits take turns on (two-key locks). */
const submitLockClass = 1_364_121_907;

/** Checks a query spec as sent (shape, types, nesting), naming each problem by its path. */
export function parseQuerySpec(input: unknown): QuerySpec {
  if (nestingDepth(input) > maxSpecDepth) {
    throw new AppError(
      'invalid_spec',
      `The query spec is nested more than ${maxSpecDepth} levels deep`,
      [{ path: '(spec)', message: `nested more than ${maxSpecDepth} levels deep` }],
    );
  }
  const parsed = querySpecSchema.safeParse(input);
  if (!parsed.success) {
    const details = zodIssues(parsed.error, '(spec)');
    throw new AppError(
      'invalid_spec',
      `The query spec is invalid: ${details[0]?.path}: ${details[0]?.message}`,
      details,
    );
  }
  return parsed.data;
}

/**
 * Checks a query spec for a user: its shape, the dataset's columns and the user's access, so
 * that a bad spec is a 400 (or 403) at once rather than a failed job later.
 */
/** A location the check compiles against and nothing reads. */
const checkOnly = '/medlake-check/*.parquet';

export async function checkQuerySpec(platform: Platform, user: User, input: unknown) {
  const spec = parseQuerySpec(input);
  // The dataset and the user's grants on it as they are now, in one statement.
  const found = await datasetWithGrants(platform.catalog, spec.dataset, user.id, new Date());
  if (!found) throw notFound('dataset_not_found', `Dataset ${spec.dataset}`);
  const { dataset } = found;
  const access = await requireDatasetAccess(platform, user, dataset.id, found.grants);
  const columns = queryColumns(dataset.contract);
  assertSpecAllowed(spec, access, columns);
  // Planning against no releases and compiling checks every column name, type and value now,
  // before the job waits in the queue; the worker plans again against the real releases.
  compileQuery(planQuery(spec, []).spec, {
    dialect: platform.engine.dialect,
    columns,
    codeSets: codeSetCodes(loadCodeSets()),
    files: { main: [checkOnly], cohort: spec.cohort?.criteria.map(() => [checkOnly]) ?? [] },
  });
  return { spec, dataset, access };
}

/**
 * What the query would cost of the privacy budget, before it is submitted: nothing to say
 * (`noisy: false`) unless the dataset answers the user with noise.
 */
export async function priceQuery(
  platform: Platform,
  user: User,
  input: unknown,
): Promise<QueryCost> {
  const { spec, dataset, access } = await checkQuerySpec(platform, user, input);
  const price = await priceOfQuery(platform, spec, dataset, access);
  return price ? { noisy: true, ...price } : { noisy: false };
}

/**
 * Records a checked query for the user, together with its audit entry, in the queue; or, with
 * `startHere` (a request that waits for its answer), started at once by this process's worker
 * when it has room: the job is then recorded as running there, as a claim would leave it.
 */
export async function submitQuery(
  platform: Platform,
  caller: Caller,
  input: unknown,
  options: { startHere?: boolean } = {},
): Promise<QueryJob> {
  const { spec, dataset, access } = await checkQuerySpec(platform, caller.user, input);
  const price = await priceOfQuery(platform, spec, dataset, access);
  if (price) assertAffordable(price);
  const specSha256 = createHash('sha256').update(canonicalJson(spec)).digest('hex');

  const id = randomUUID();
  const newJob: NewQueryJob = {
    id,
    userId: caller.user.id,
    datasetId: dataset.id,
    spec,
    specSha256,
    accessLevel: access.level,
    engine: platform.engine.kind,
  };
  const limit = platform.env.MEDLAKE_QUERY_QUEUE_PER_USER;
  const slot = options.startHere ? reserveQueryRun(platform) : undefined;
  const record = () =>
    platform.catalog.db.transaction().execute(async (trx) => {
      // The user's count of waiting jobs is checked by the insert itself. The user's submits
      // take turns first: on PostgreSQL each statement counts only what had committed when it
      // began, so concurrent submits would each find room and all be let in. The embedded
      // PGlite runs one transaction at a time (its one connection is held to the commit), so
      // there they take turns already.
      if (platform.catalog.kind !== 'pglite') {
        await sql`select pg_advisory_xact_lock(${submitLockClass}, hashtext(${caller.user.id}))`.execute(
          trx,
        );
      }
      const job = await queryJobsRepository(trx).submit(newJob, {
        waitingLimit: limit,
        ...(slot ? { startedBy: slot.workerId } : {}),
      });
      if (!job) {
        throw new AppError(
          'queue_full',
          `You have ${limit} queries queued or running, as many as one user may: wait for one to finish, or cancel one, then submit again`,
        );
      }
      await platform.audit.record(
        {
          action: 'query.submit',
          actor: actorOf(caller),
          target: `query:${id}`,
          details: { dataset: dataset.id, specSha256, accessLevel: access.level },
        },
        trx,
      );
      return job;
    });
  rememberSubmitChecks(id, { user: caller.user, dataset, access, spec });
  if (!slot) return record();
  // The run starts first and the record after this turn of the event loop, so that the run's
  // catalog read comes before the record's transaction and its engine works while the job
  // and its audit entry are recorded. The run waits for the record before anything of its
  // answer goes further (QueryRunSlot.run).
  let recordNow = () => undefined as void;
  const recorded = new Promise<QueryJob>((resolve, reject) => {
    recordNow = () => void record().then(resolve, reject);
  });
  slot.run(startedJob(newJob), recorded);
  setImmediate(recordNow);
  return recorded;
}

/** The job as the record of a submit started by a worker holds it, before it is read back. */
function startedJob(job: NewQueryJob): QueryJob {
  const now = new Date();
  return {
    ...job,
    status: 'running',
    releaseIds: null,
    progress: null,
    summary: null,
    resultKey: null,
    error: null,
    cancelRequested: false,
    attempts: 1,
    createdAt: now,
    startedAt: now,
    finishedAt: null,
    review: null,
  };
}
