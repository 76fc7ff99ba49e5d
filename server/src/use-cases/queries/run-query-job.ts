import {
  querySpecSchema,
  releaseLedgerOn,
  type QuerySpec,
  type QuerySummary,
} from '@medlake/shared';
import { datasetsRepository, type Dataset } from '../../catalog/datasets-repository.ts';
import type { QueryJob } from '../../catalog/query-jobs-repository.ts';
import { usersRepository } from '../../catalog/users-repository.ts';
import type { RunOptions } from '../../engines/types.ts';
import { AppError } from '../../errors.ts';
import type { Platform } from '../../platform.ts';
import { assertSpecAllowed, type DatasetAccess } from '../../policy.ts';
import { codeSetCodes, loadCodeSets } from '../../query/code-sets.ts';
import {
  compileQuery,
  compileWithheldPatients,
  hiddenPatients,
  hiddenRows,
  type CompileContext,
  type CompiledQuery,
  type ResultColumn,
} from '../../query/compile-query.ts';
import {
  applyDisclosureControl,
  percentilesNeedCounting,
  type AggregateRow,
  type DisclosedResult,
  type DisclosedRow,
} from '../../query/disclosure.ts';
import { takeFreshSubmitChecks, type SubmitChecks } from '../../query/fresh-checks.ts';
import {
  mostRowsPerPatient,
  planQuery,
  type CandidateRelease,
  type QueryPlan,
} from '../../query/plan-query.ts';
import { mostRowsPerPatientRead, withMostRowsPerPatient } from '../../query/patient-rows-bound.ts';
import { presentResultRow, suppressedCount } from '../../query/present-result.ts';
import { queryColumns, type QueryColumn } from '../../query/query-columns.ts';
import { runAggregate, runPublishedTotal } from '../../query/run-aggregate.ts';
import { rememberResultRows } from '../../query/result-cache.ts';
import { checkReleaseLedger } from '../../query/release-ledger.ts';
import {
  addNoise,
  answerKeyOf,
  assertNoisyMeasures,
  budgetState,
  groupsPerPatient,
  noiseRule,
  spendBudget,
  type BudgetState,
  type NoisePolicy,
} from '../../privacy/noisy-answers.ts';
import { sortRows } from '../../query/sort-rows.ts';
import { candidateReleases } from './candidate-releases.ts';
import { releaseFilesGlob } from '../../ingest/lake-keys.ts';
import { requireDatasetAccess } from './dataset-access.ts';

export type QueryJobOutcome = {
  summary: QuerySummary;
  resultKey: string;
  releaseIds: string[];
};

export function resultKeyOf(jobId: string): string {
  return `results/${jobId}/result.parquet`;
}

/**
 * Runs one claimed query job: plans which releases it reads, compiles it for the engine, runs
 * it, applies disclosure control for the user's access level as it is now, and stores the
 * result once as Parquet in the results area. The user's rights are checked again here when
 * the job waited (a grant may have expired meanwhile); see fresh-checks.ts.
 */
export async function runQueryJob(
  platform: Platform,
  job: QueryJob,
  options: RunOptions = {},
): Promise<QueryJobOutcome> {
  const { dataset, access } = takeFreshSubmitChecks(job.id) ?? (await checkAgain(platform, job));
  const spec = querySpecSchema.parse(job.spec);
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
  const resultKey = resultKeyOf(job.id);
  const read = new Map<string, CandidateRelease>();
  for (const release of [...plan.main, ...plan.cohort.flat()]) read.set(release.id, release);
  const releases = summarizeReleases([...read.values()]);

  if (spec.select) {
    const rowCount = await writeRowLevelResult(platform, compiled, plan, resultKey, options);
    return {
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
        keyPoints: [
          `${rowCount.toLocaleString('en-US')} ${rowCount === 1 ? 'row matches' : 'rows match'}${spec.limit !== undefined && rowCount === spec.limit ? ` (limited to ${spec.limit.toLocaleString('en-US')})` : ''}.`,
          describeReleases(releases),
        ],
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
  // Groups under the threshold will be withheld: the total shown is then over the others only,
  // or the total minus the groups shown would give back what was withheld. Noisy answers keep
  // the noisy grand total, which the noise protects.
  const small = (row: AggregateRow) => row[hiddenPatients] > 0 && row[hiddenPatients] < threshold;
  const totalOverShown = access.level === 'aggregate' && grouped && !noise && groups.some(small);
  const total = totalOverShown
    ? await runPublishedTotal(platform.engine, compiled, options)
    : grandTotal;
  let budget: BudgetState | undefined;
  if (noise) {
    const answerKey = answerKeyOf(spec, [...read.keys()], noise);
    const holder = access.holder;
    budget = await spendBudget(platform, {
      holder,
      datasetId: dataset.id,
      answerKey,
      queryId: job.id,
      noise,
    });
    // Partition selection: only the groups whose noisy patient count clears the threshold.
    groups = addNoise(platform, {
      holder,
      answerKey,
      noise,
      spec,
      columns: compiled.columns,
      groups,
      total,
      grouped,
    });
  }
  // Row-level users see the rows themselves: there is nothing for the ledger to protect.
  const ledger =
    releaseLedgerOn(dataset.contract.privacy) && access.level === 'aggregate'
      ? await checkReleaseLedger(platform, {
          holder: access.holder,
          datasetId: dataset.id,
          spec: plan.spec,
          columns: compiled.columns,
          groups,
          total,
          threshold,
          releaseIds: [...read.keys()],
          context,
          mainReleases: plan.main,
          cohortReleases: plan.cohort.flat().map((release) => release.id),
          totalOverShown,
          options,
          withheldPatients: async (groupBy, coarse) => {
            const statement = compileWithheldPatients(
              { ...plan.spec, groupBy: [...groupBy] },
              { ...context, minGroupPatients: threshold },
              coarse,
            );
            const found = await platform.engine.rows(statement, options);
            return found.map((row) => ({
              values: coarse.map((_, index) => row[`c${index}`]),
              patients: Number(row.patients),
            }));
          },
        })
      : undefined;
  // From the ledger's check to its record, the holder's other results wait (ledger/lock.ts).
  let disclosed: DisclosedResult;
  let rows: DisclosedRow[];
  try {
    disclosed = applyDisclosureControl({
      groups,
      total,
      columns: compiled.columns,
      level: access.level,
      threshold,
      grouped,
      ...(ledger ? { ledger: ledger.verdict } : {}),
    });
    if (budget && noise) disclosed.rules.unshift(noiseRule(budget, noise));
    rows = sortRows(disclosed.rows, resultOrder(spec, compiled.columns)).slice(0, spec.limit);
    await writeAggregateResult(platform, compiled.columns, rows, resultKey);
    await ledger?.record(job.id, rows, !disclosed.total.suppressed);
  } finally {
    await ledger?.release();
  }
  rememberResultRows(job.id, rows);

  // A suppressed total says "<N" patients only where that is true (the ledger may hold back a
  // large one), and never "<N" rows: few patients may have many rows.
  const hidden = disclosed.total.suppressed;
  const matching = {
    rows: hidden ? suppressedCount : total[hiddenRows],
    patients: hidden ? (small(total) ? `<${threshold}` : suppressedCount) : total[hiddenPatients],
  };
  const suppressedGroups = grouped ? rows.filter((row) => row.suppressed).length : 0;
  return {
    resultKey,
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
  const candidates = await candidateReleases(platform, spec, access);
  const plan = planQuery(spec, candidates);
  const locate = (releases: CandidateRelease[]) =>
    releases.map((release) => releaseFilesGlob(platform.store.locate(release.folder)));
  const context: CompileContext = {
    dialect: platform.engine.dialect,
    columns,
    codeSets: codeSetCodes(loadCodeSets()),
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
  const plan = planQuery(spec, await candidateReleases(platform, spec, access));
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
  if (!user || !dataset) throw new AppError('NOT_FOUND', 'The query’s user or dataset is gone');
  return { user, dataset, access: await requireDatasetAccess(platform, user, dataset.id) };
}

async function writeAggregateResult(
  platform: Platform,
  columns: readonly ResultColumn[],
  rows: readonly DisclosedRow[],
  resultKey: string,
): Promise<void> {
  await platform.engine.writeRowsAsParquet(
    rows,
    [...columns, { name: 'suppressed', type: 'boolean' }],
    await platform.store.locateForWrite(resultKey),
  );
}

async function writeRowLevelResult(
  platform: Platform,
  compiled: CompiledQuery,
  plan: QueryPlan,
  resultKey: string,
  options: RunOptions,
): Promise<number> {
  const target = await platform.store.locateForWrite(resultKey);
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

function describeReleases(releases: QuerySummary['releases']): string {
  if (releases.count === 0) return 'No release matched the filters, so no data was read.';
  const months = releases.months;
  const span = months.length === 1 ? months[0] : `${months[0]} to ${months.at(-1)}`;
  return `Read ${releases.count} ${releases.count === 1 ? 'release' : 'releases'}: ${releases.hospitals.length} ${releases.hospitals.length === 1 ? 'hospital' : 'hospitals'}, ${span}.`;
}

function aggregateKeyPoints(
  matching: { rows: number | string; patients: number | string },
  groups: { shown: number; suppressed: number; totalOverShown: boolean },
  disclosed: DisclosedResult,
  releases: QuerySummary['releases'],
  spec: QuerySpec,
): string[] {
  const count = (value: number | string) =>
    typeof value === 'number' ? value.toLocaleString('en-US') : value;
  const cohort = spec.cohort
    ? ` of the cohort (patients who met ${spec.cohort.criteria.length === 1 ? 'its criterion' : `${spec.cohort.match === 'all' ? 'all' : 'any'} of its ${spec.cohort.criteria.length} criteria`})`
    : '';
  const points = [
    typeof matching.rows === 'string'
      ? typeof matching.patients === 'string' && matching.patients.startsWith('<')
        ? `Fewer than ${matching.patients.slice(1)} patients${cohort} match.`
        : `The number of patients${cohort} that match is held back.`
      : groups.totalOverShown
        ? `${count(matching.patients)} patients${cohort} and ${count(matching.rows)} rows in the groups shown.`
        : `${count(matching.patients)} patients${cohort} and ${count(matching.rows)} rows match.`,
  ];
  if (spec.groupBy.length > 0) {
    points.push(
      `${groups.shown.toLocaleString('en-US')} ${groups.shown === 1 ? 'group' : 'groups'}${groups.suppressed > 0 ? `, ${groups.suppressed} of them suppressed` : ''}.`,
    );
  }
  for (const rule of disclosed.rules) points.push(rule.description);
  points.push(describeReleases(releases));
  return points;
}
