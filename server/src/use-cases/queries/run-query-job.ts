import { querySpecSchema, type QuerySpec, type QuerySummary } from '@medlake/shared';
import { datasetsRepository, type Dataset } from '../../catalog/datasets-repository.ts';
import type { QueryJob } from '../../catalog/query-jobs-repository.ts';
import { usersRepository } from '../../catalog/users-repository.ts';
import type { RunOptions } from '../../engines/types.ts';
import { AppError } from '../../errors.ts';
import { releaseFileLocations } from '../../ingest/lake-keys.ts';
import type { Platform } from '../../platform.ts';
import { assertSpecAllowed, type DatasetAccess } from '../../policy.ts';
import { airlockVerdict, type AirlockVerdict } from '../../privacy/airlock.ts';
import {
  answerKeyOf,
  assertNoisyMeasures,
  budgetState,
  groupsPerPatient,
  type BudgetState,
  type NoisePolicy,
} from '../../privacy/noisy-answers.ts';
import { applyPrivacy } from '../../privacy/release-step.ts';
import { codeSetCodes, loadCodeSets } from '../../query/code-sets.ts';
import {
  compileQuery,
  hiddenPatients,
  hiddenRows,
  type CompileContext,
  type CompiledQuery,
  type ResultColumn,
} from '../../query/compile-query.ts';
import { percentilesNeedCounting, type DisclosedRow } from '../../query/disclosure.ts';
import { freshMs, takeFreshSubmitChecks, type SubmitChecks } from '../../query/fresh-checks.ts';
import {
  mostRowsPerPatient,
  planOptionsOf,
  planQuery,
  type CandidateRelease,
  type QueryPlan,
} from '../../query/plan-query.ts';
import { mostRowsPerPatientRead, withMostRowsPerPatient } from '../../query/patient-rows-bound.ts';
import { aggregateKeyPoints, rowKeyPoints } from '../../query/present-key-points.ts';
import { presentResultRow, suppressedCount } from '../../query/present-result.ts';
import { queryColumns, type QueryColumn } from '../../query/query-columns.ts';
import { rememberResultRows } from '../../query/result-cache.ts';
import { runAggregate } from '../../query/run-aggregate.ts';
import { sortRows } from '../../query/sort-rows.ts';
import { candidateReleases } from './candidate-releases.ts';
import { storedInCatalog } from './stored-result.ts';
import { lostResultAccess, requireDatasetAccess } from './dataset-access.ts';

export type QueryJobOutcome = {
  summary: QuerySummary;
  resultKey: string;
  releaseIds: string[];
  /** The airlock's verdict on the stored result, where the dataset has an airlock. */
  review?: AirlockVerdict;
  /**
   * A small aggregate result's rows, stored in the catalog with the job's success instead of
   * as a Parquet file at `resultKey` (stored-result.ts).
   */
  rows?: DisclosedRow[];
};

/**
 * Where a run of the job stores its result: one key per attempt, so that a worker whose lease
 * ran out and that finishes late writes beside the result of the worker that took the job
 * over, never over it (the catalog names the result that counts).
 */
export function resultKeyOf(job: Pick<QueryJob, 'id' | 'attempts'>): string {
  return `results/${job.id}/attempt-${job.attempts}/result.parquet`;
}

/**
 * Runs one claimed query job: plans which releases it reads, compiles it for the engine, runs
 * it, puts an aggregate answer through the privacy step for the user's access level as it is
 * now (privacy/release-step.ts), stores the result once as Parquet in the results area, and
 * has the dataset's airlock check what was stored. The user's rights are checked again here
 * when the job waited (a grant may have expired meanwhile); see fresh-checks.ts.
 */
export async function runQueryJob(
  platform: Platform,
  job: QueryJob,
  options: RunOptions = {},
  /**
   * For a job started while its submit records it: awaited after the engine's run, so that
   * nothing of the answer goes further before the job and its audit entry are committed.
   */
  recorded?: Promise<unknown>,
): Promise<QueryJobOutcome> {
  const { dataset, ...outcome } = await answerQuery(platform, job, options, recorded);
  // The airlock's verdict is stored in the same update that finishes the job.
  const review = await airlockVerdict(platform, dataset.contract, outcome);
  return review ? { ...outcome, review } : outcome;
}

async function answerQuery(
  platform: Platform,
  job: QueryJob,
  options: RunOptions,
  recorded: Promise<unknown> | undefined,
): Promise<QueryJobOutcome & { dataset: Dataset }> {
  const fresh = takeFreshSubmitChecks(job.id);
  const checkedAt = fresh?.at ?? Date.now();
  const checks = fresh ?? (await checkAgain(platform, job));
  const { dataset, access } = checks;
  const spec = checks.spec ?? querySpecSchema.parse(job.spec);
  const columns = queryColumns(dataset.contract);
  assertSpecAllowed(spec, access, columns);

  // Aggregate users of a dataset with noisy answers get counts with noise, from a budget.
  const noise = access.level === 'aggregate' ? dataset.contract.privacy.noise : undefined;
  if (noise) assertNoisyMeasures(spec, noise);
  const threshold = dataset.contract.smallCellThreshold;
  const planned = await planAndCompile(platform, spec, access, columns, {
    ...(noise ? noisyContext(noise) : {}),
    ...(access.level === 'aggregate' ? { minGroupPatients: threshold } : {}),
  });

  const { plan, context } = planned;
  let { compiled } = planned;
  const resultKey = resultKeyOf(job);
  const read = new Map<string, CandidateRelease>();
  for (const release of [...plan.main, ...plan.cohort.flat()]) read.set(release.id, release);
  const releases = summarizeReleases([...read.values()]);

  if (spec.select) {
    // Where the result goes is made ready while the access is checked again (on local disk
    // its folders); awaited by the write. An aggregate result makes it only when it is written
    // as a file: most are stored in the catalog and would leave an empty folder.
    const target = platform.store.locateForWrite(resultKey);
    target.catch(() => undefined);
    await recorded;
    await assertAccessHeld(platform, job, checkedAt, { kind: 'rows', releases });
    const rowCount = await writeRowLevelResult(platform, compiled, plan, await target, options);
    return {
      dataset,
      resultKey,
      releaseIds: [...read.keys()],
      summary: {
        kind: 'rows',
        accessLevel: access.level,
        columns: compiled.columns,
        rowCount,
        total: null,
        matching: null,
        suppressedGroups: 0,
        withheldGroups: 0,
        threshold,
        rules: [],
        releases,
        keyPoints: rowKeyPoints(rowCount, releases, spec),
      },
    };
  }

  const grouped = spec.groupBy.length > 0;
  const shape = { grouped, readsFiles: plan.main.length > 0 };
  let { groups, total: grandTotal } = await runAggregate(platform.engine, compiled, shape, options);
  if (percentilesNeedCounting(groups, grandTotal, compiled.columns, threshold)) {
    // The catalog's bound was too loose for some percentile: the most rows of one patient in
    // the files read, counted in one pass over the patient column, is exact (and cached).
    const most = await mostRowsPerPatientRead(context, (statement) =>
      platform.engine.rows(statement, options),
    );
    compiled = { ...compiled, columns: withMostRowsPerPatient(compiled.columns, most) };
  }
  if (percentilesNeedCounting(groups, grandTotal, compiled.columns, threshold)) {
    // Still too loose for some percentile: count per patient in each group instead.
    compiled = compileQuery(plan.spec, { ...context, mostRowsPerPatient: undefined });
    ({ groups, total: grandTotal } = await runAggregate(platform.engine, compiled, shape, options));
  }
  await recorded;
  await assertAccessHeld(platform, job, checkedAt, { kind: 'aggregate', releases });
  // The result file is written while the ledger records the rows and nothing waits for it
  // but the job's end: DuckDB writes on its own threads, the catalog works on this one. A
  // small result goes to the catalog instead, with the job's success (stored-result.ts).
  let written: Promise<void> | undefined;
  let inCatalog: DisclosedRow[] | undefined;
  const released = await applyPrivacy(
    platform,
    {
      jobId: job.id,
      userId: job.userId,
      spec,
      dataset,
      access,
      plan,
      compiled,
      context,
      groups,
      grandTotal,
      releaseIds: [...read.keys()],
      options,
    },
    async (disclosed) => {
      const rows = sortRows(disclosed.rows, resultOrder(spec, compiled.columns)).slice(
        0,
        spec.limit,
      );
      if (storedInCatalog(platform, dataset.contract, rows)) {
        inCatalog = rows;
        return rows;
      }
      written = writeAggregateResult(
        platform,
        compiled.columns,
        rows,
        platform.store.locateForWrite(resultKey),
      );
      // Awaited below; a failure of the ledger's record meanwhile must not leave it unheard.
      written.catch(() => undefined);
      return rows;
    },
  ).catch(async (error: unknown) => {
    await written?.catch(() => undefined);
    throw error;
  });
  // The job succeeds only once its result is stored.
  await written;
  const { disclosed, rows, total, totalOverShown } = released;
  rememberResultRows(job.id, rows);

  // A suppressed total says "<N" patients only where that is true (the ledger may hold back a
  // large one), and never "<N" rows: few patients may have many rows.
  const hidden = disclosed.total.suppressed;
  const matching = {
    rows: hidden ? suppressedCount : total[hiddenRows],
    patients: hidden
      ? released.totalIsSmall
        ? `<${threshold}`
        : suppressedCount
      : total[hiddenPatients],
  };
  const suppressedGroups = grouped ? rows.filter((row) => row.suppressed).length : 0;
  return {
    dataset,
    resultKey,
    ...(inCatalog ? { rows: inCatalog } : {}),
    releaseIds: [...read.keys()],
    summary: {
      kind: 'aggregate',
      accessLevel: access.level,
      columns: compiled.columns,
      rowCount: rows.length,
      total: presentResultRow(disclosed.total, compiled.columns),
      matching,
      suppressedGroups,
      withheldGroups: disclosed.withheld,
      threshold,
      rules: disclosed.rules,
      releases,
      keyPoints: aggregateKeyPoints(
        matching,
        { shown: rows.length, suppressed: suppressedGroups, totalOverShown },
        disclosed,
        releases,
        spec,
      ),
    },
  };
}

/**
 * Which releases a query reads (from the catalog, within the user's grant) and its SQL for the
 * engine: everything a query needs before the engine starts. At 500 TB this is what has to stay
 * fast (npm run bench:catalog).
 */
export async function planAndCompile(
  platform: Platform,
  spec: QuerySpec,
  access: DatasetAccess,
  columns: ReadonlyMap<string, QueryColumn>,
  options: Pick<
    CompileContext,
    'rowsPerPatient' | 'clampedSums' | 'groupsPerPatient' | 'minGroupPatients'
  > = {},
): Promise<{ plan: QueryPlan; compiled: CompiledQuery; context: CompileContext }> {
  const codeSets = codeSetCodes(loadCodeSets());
  const planOptions = planOptionsOf(columns, codeSets);
  const candidates = await candidateReleases(platform, spec, access, planOptions);
  const plan = planQuery(spec, candidates, planOptions);
  // A release's files, or only those of them the planner found can match: by name either way,
  // so that a file lost from the lake fails the query rather than going unread.
  const locate = (releases: CandidateRelease[]) =>
    releases.flatMap((release) =>
      release.readFiles
        ? release.readFiles.map((file) => platform.store.locate(`${release.folder}/${file}`))
        : releaseFileLocations(platform.store, release),
    );
  const context: CompileContext = {
    dialect: platform.engine.dialect,
    columns,
    codeSets,
    files: { main: locate(plan.main), cohort: plan.cohort.map(locate) },
    // Aggregate users cannot name a pseudonym column; row-level ones see their own pseudonyms.
    ...(access.level === 'row'
      ? { holderKey: platform.privacy.pseudonymKeyFor(access.holder) }
      : {}),
    ...options,
  };
  const bound = mostRowsPerPatient(plan.main);
  if (options.minGroupPatients !== undefined && bound !== undefined) {
    context.mostRowsPerPatient = bound;
  }
  return { plan, compiled: compileQuery(plan.spec, context), context };
}

/**
 * What a query would cost of the holder's privacy budget, for a dataset with noisy answers and
 * an aggregate user (undefined otherwise): shown before it runs, and checked when it is
 * submitted. The worker checks and spends again when it runs, against the releases it reads.
 */
export async function priceOfQuery(
  platform: Platform,
  spec: QuerySpec,
  dataset: Dataset,
  access: DatasetAccess,
): Promise<BudgetState | undefined> {
  const noise = access.level === 'aggregate' ? dataset.contract.privacy.noise : undefined;
  if (!noise) return undefined;
  assertNoisyMeasures(spec, noise);
  const planOptions = planOptionsOf(queryColumns(dataset.contract), codeSetCodes(loadCodeSets()));
  const plan = planQuery(
    spec,
    await candidateReleases(platform, spec, access, planOptions),
    planOptions,
  );
  const releaseIds = new Set([...plan.main, ...plan.cohort.flat()].map((release) => release.id));
  return budgetState(platform, {
    holder: access.holder,
    datasetId: dataset.id,
    answerKey: answerKeyOf(spec, [...releaseIds], noise),
    noise,
  });
}

/** The user's rights as they are now, for a job that waited or was submitted elsewhere. */
async function checkAgain(platform: Platform, job: QueryJob): Promise<SubmitChecks> {
  const user = await usersRepository(platform.catalog.db).byId(job.userId);
  const dataset = await datasetsRepository(platform.catalog.db).get(job.datasetId);
  if (!user || !dataset)
    throw new AppError('dataset_not_found', 'The query’s user or dataset is gone');
  return { user, dataset, access: await requireDatasetAccess(platform, user, dataset.id) };
}

/**
 * A run that outlasted its access check checks again before anything of its answer is stored
 * or put through the privacy step: a grant revoked or expired, a user disabled, row access or a
 * hospital taken away while the engine ran ends the job, instead of answering under the access
 * the user had when it started.
 */
async function assertAccessHeld(
  platform: Platform,
  job: QueryJob,
  checkedAt: number,
  answer: Pick<QuerySummary, 'kind' | 'releases'>,
): Promise<void> {
  if (Date.now() - checkedAt <= freshMs) return;
  const { access } = await checkAgain(platform, job);
  const lost = lostResultAccess({ accessLevel: job.accessLevel, summary: answer }, access);
  if (lost) {
    throw new AppError(
      'access_lost',
      lost === 'row access'
        ? 'Your row access to the dataset ended while the query ran: run it again under your current access'
        : 'Your access to a hospital this query read ended while it ran: run it again under your current access',
    );
  }
}

async function writeAggregateResult(
  platform: Platform,
  columns: readonly ResultColumn[],
  rows: readonly DisclosedRow[],
  target: Promise<string>,
): Promise<void> {
  await platform.engine.writeRowsAsParquet(
    rows,
    [...columns, { name: 'suppressed', type: 'boolean' }],
    await target,
  );
}

async function writeRowLevelResult(
  platform: Platform,
  compiled: CompiledQuery,
  plan: QueryPlan,
  target: string,
  options: RunOptions,
): Promise<number> {
  const { dialect } = platform.engine;
  const statement =
    plan.main.length > 0
      ? compiled
      : {
          // Nothing to read: an empty table with the result's columns.
          sql: `SELECT ${compiled.columns.map((column) => `${dialect.castToText('NULL')} AS ${dialect.quoteIdentifier(column.name)}`).join(', ')} WHERE FALSE`,
          params: [],
        };
  await platform.engine.writeFile(statement, target, 'parquet', options);
  const [count] = await platform.engine.rows({
    sql: `SELECT count(*) AS n FROM ${dialect.scanParquet([target])} AS r`,
    params: [],
  });
  return Number(count?.n ?? 0);
}

/**
 * The spec's order, or by default the groups in their order, ascending: months and years come
 * in time order, in the table, the pages and the exports alike.
 */
function resultOrder(spec: QuerySpec, columns: readonly ResultColumn[]): QuerySpec['orderBy'] {
  if (spec.orderBy.length > 0) return spec.orderBy;
  return columns
    .filter((column) => column.kind === 'group')
    .map((column) => ({ by: column.name, direction: 'asc' as const }));
}

/** What the compiler bounds and clamps for noisy answers (privacy/noisy-answers.ts). */
function noisyContext(
  noise: NoisePolicy,
): Pick<CompileContext, 'rowsPerPatient' | 'clampedSums' | 'groupsPerPatient'> {
  const groups = groupsPerPatient(noise);
  return {
    rowsPerPatient: noise.maxRowsPerPatient,
    clampedSums: noise.sums,
    // Fewer groups than rows per patient need bounding of their own.
    ...(groups < noise.maxRowsPerPatient ? { groupsPerPatient: groups } : {}),
  };
}

function summarizeReleases(releases: readonly CandidateRelease[]): QuerySummary['releases'] {
  return {
    count: releases.length,
    hospitals: [...new Set(releases.map((release) => release.hospitalId))].sort(),
    months: [...new Set(releases.map((release) => release.month))].sort(),
  };
}
