import { createHash, randomUUID } from 'node:crypto';
import { canonicalJson, querySpecSchema, type QueryCost, type QuerySpec } from '@medlake/shared';
import { datasetsRepository } from '../../catalog/datasets-repository.ts';
import { queryJobsRepository, type QueryJob } from '../../catalog/query-jobs-repository.ts';
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
import { priceOfQuery } from './run-query-job.ts';

const maxSpecDepth = 40;

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
  const dataset = await datasetsRepository(platform.catalog.db).get(spec.dataset);
  if (!dataset) throw notFound('dataset_not_found', `Dataset ${spec.dataset}`);
  const access = await requireDatasetAccess(platform, user, dataset.id);
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

/** Queues a checked query for the user, together with its audit entry. */
export async function submitQuery(
  platform: Platform,
  caller: Caller,
  input: unknown,
): Promise<QueryJob> {
  const { spec, dataset, access } = await checkQuerySpec(platform, caller.user, input);
  const price = await priceOfQuery(platform, spec, dataset, access);
  if (price) assertAffordable(price);
  const limit = platform.env.MEDLAKE_QUERY_QUEUE_PER_USER;
  if ((await queryJobsRepository(platform.catalog.db).countWaiting(caller.user.id)) >= limit) {
    throw new AppError(
      'queue_full',
      `You have ${limit} queries queued or running, as many as one user may: wait for one to finish, or cancel one, then submit again`,
    );
  }
  const specSha256 = createHash('sha256').update(canonicalJson(spec)).digest('hex');

  const id = randomUUID();
  const job = await platform.catalog.db.transaction().execute(async (trx) => {
    await platform.audit.record(
      {
        action: 'query.submit',
        actor: actorOf(caller),
        target: `query:${id}`,
        details: { dataset: dataset.id, specSha256, accessLevel: access.level },
      },
      trx,
    );
    return queryJobsRepository(trx).enqueue({
      id,
      userId: caller.user.id,
      datasetId: dataset.id,
      spec,
      specSha256,
      accessLevel: access.level,
      engine: platform.engine.kind,
    });
  });
  rememberSubmitChecks(job.id, { user: caller.user, dataset, access });
  return job;
}
