import { createHash, randomUUID } from 'node:crypto';
import { querySpecSchema, type QuerySpec } from '@medlake/shared';
import { datasetsRepository } from '../../catalog/datasets-repository.ts';
import { queryJobsRepository, type QueryJob } from '../../catalog/query-jobs-repository.ts';
import type { User } from '../../catalog/users-repository.ts';
import { AppError, notFound } from '../../errors.ts';
import type { Platform } from '../../platform.ts';
import { assertSpecAllowed } from '../../policy.ts';
import { codeSetCodes, loadCodeSets } from '../../query/code-sets.ts';
import { compileQuery } from '../../query/compile-query.ts';
import { planQuery } from '../../query/plan-query.ts';
import { queryColumns } from '../../query/query-columns.ts';
import { nestingDepth, zodIssues } from '../../validation.ts';
import { requireDatasetAccess } from './dataset-access.ts';

const maxSpecDepth = 40;

/** Checks a query spec as sent (shape, types, nesting), naming each problem by its path. */
export function parseQuerySpec(input: unknown): QuerySpec {
  if (nestingDepth(input) > maxSpecDepth) {
    throw new AppError(
      'VALIDATION_FAILED',
      `The query spec is nested more than ${maxSpecDepth} levels deep`,
      [{ path: '(spec)', message: `nested more than ${maxSpecDepth} levels deep` }],
    );
  }
  const parsed = querySpecSchema.safeParse(input);
  if (!parsed.success) {
    const details = zodIssues(parsed.error, '(spec)');
    throw new AppError(
      'VALIDATION_FAILED',
      `The query spec is invalid: ${details[0]?.path}: ${details[0]?.message}`,
      details,
    );
  }
  return parsed.data;
}

/**
 * Queues a query for the user: the spec is checked against the dataset's columns and the
 * user's access before anything runs, so that a bad spec is a 400 (or 403) at once rather
 * than a failed job later.
 */
export async function submitQuery(
  platform: Platform,
  user: User,
  input: unknown,
): Promise<QueryJob> {
  const spec = parseQuerySpec(input);
  const dataset = await datasetsRepository(platform.catalog.db).get(spec.dataset);
  if (!dataset) throw notFound(`Dataset ${spec.dataset}`);
  const access = await requireDatasetAccess(platform, user, dataset.id);
  const columns = queryColumns(dataset.contract);
  assertSpecAllowed(spec, access, columns);
  // Planning against no releases and compiling checks every column name, type and value now,
  // before the job waits in the queue; the worker plans again against the real releases.
  compileQuery(planQuery(spec, []).spec, {
    dialect: platform.engine.dialect,
    columns,
    codeSets: codeSetCodes(loadCodeSets()),
    files: { main: ['(check)'], cohort: spec.cohort?.criteria.map(() => ['(check)']) ?? [] },
  });

  return queryJobsRepository(platform.catalog.db).enqueue({
    id: randomUUID(),
    userId: user.id,
    datasetId: dataset.id,
    spec,
    specSha256: createHash('sha256').update(canonicalJson(spec)).digest('hex'),
    accessLevel: access.level,
    engine: platform.engine.kind,
  });
}

/** JSON with object keys sorted, so that the same spec always hashes the same. */
export function canonicalJson(value: unknown): string {
  return JSON.stringify(value, (_key, item: unknown) =>
    item && typeof item === 'object' && !Array.isArray(item)
      ? Object.fromEntries(Object.entries(item).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)))
      : item,
  );
}
