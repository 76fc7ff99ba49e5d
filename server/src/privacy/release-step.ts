import { releaseLedgerOn, type QuerySpec } from '@medlake/shared';
import type { Dataset } from '../catalog/datasets-repository.ts';
import type { RunOptions } from '../engines/types.ts';
import type { PlatformParts } from '../platform-parts.ts';
import type { DatasetAccess } from '../policy.ts';
import {
  compileWithheldPatients,
  hiddenPatients,
  type CompileContext,
  type CompiledQuery,
} from '../query/compile-query.ts';
import {
  applyDisclosureControl,
  type AggregateRow,
  type DisclosedResult,
  type DisclosedRow,
} from '../query/disclosure.ts';
import type { QueryPlan } from '../query/plan-query.ts';
import { checkReleaseLedger, type WithheldPatients } from '../query/release-ledger.ts';
import { runPublishedTotal } from '../query/run-aggregate.ts';
import {
  addNoise,
  answerKeyOf,
  noiseRule,
  spendBudget,
  type BudgetState,
} from './noisy-answers.ts';

/** An aggregate answer as the engine gave it, before anything protects it. */
export type RawAnswer = {
  jobId: string;
  /** Who asked: the release ledger follows the user as well as the holder. */
  userId: string;
  /** The spec as asked: its answer key names the noise (what priceOfQuery quoted). */
  spec: QuerySpec;
  dataset: Dataset;
  access: DatasetAccess;
  plan: QueryPlan;
  compiled: CompiledQuery;
  context: CompileContext;
  groups: AggregateRow[];
  /** The engine's total over every group, small ones included. */
  grandTotal: AggregateRow;
  releaseIds: readonly string[];
  options: RunOptions;
};

/** What the privacy step lets out of an answer, and why. */
export type ReleasedAnswer = {
  disclosed: DisclosedResult;
  /** The rows stored as the result: disclosed, in their order, within the spec's limit. */
  rows: DisclosedRow[];
  /** The total shown: over every group, or over the shown ones only (totalOverShown). */
  total: AggregateRow;
  totalOverShown: boolean;
  /** Whether the total has fewer than threshold patients (it then says "<threshold"). */
  totalIsSmall: boolean;
};

/**
 * The privacy sequence of an aggregate answer, in the one order that keeps it sound: the total
 * published over the shown groups where small ones will be withheld; noise from the holder's
 * budget (noisy datasets); the release ledger's check against what the holder was released
 * before; disclosure control; then `store` writes the released rows, and the ledger records
 * them, both before the holder's next answer may be checked (ledger/lock.ts). Row-level users
 * get the figures as they are, with no ledger. The airlock's hold on the stored result is the
 * last step, once the result is written (airlock.ts, called by the query job).
 */
export async function applyPrivacy(
  platform: PlatformParts,
  answer: RawAnswer,
  store: (disclosed: DisclosedResult) => Promise<DisclosedRow[]>,
): Promise<ReleasedAnswer> {
  const { spec, dataset, access, plan, compiled, context, options } = answer;
  const threshold = dataset.contract.smallCellThreshold;
  const noise = access.level === 'aggregate' ? dataset.contract.privacy.noise : undefined;
  const grouped = spec.groupBy.length > 0;
  // Groups under the threshold will be withheld: the total shown is then over the others only,
  // or the total minus the groups shown would give back what was withheld. Noisy answers keep
  // the noisy grand total, which the noise protects.
  const small = (row: AggregateRow) => row[hiddenPatients] > 0 && row[hiddenPatients] < threshold;
  const totalOverShown =
    access.level === 'aggregate' && grouped && !noise && answer.groups.some(small);
  const total = totalOverShown
    ? await runPublishedTotal(platform.engine, compiled, options)
    : answer.grandTotal;
  let groups = answer.groups;
  let budget: BudgetState | undefined;
  if (noise) {
    const answerKey = answerKeyOf(spec, answer.releaseIds, noise);
    const holder = access.holder;
    budget = await spendBudget(platform, {
      holder,
      datasetId: dataset.id,
      answerKey,
      queryId: answer.jobId,
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
          userId: answer.userId,
          datasetId: dataset.id,
          spec: plan.spec,
          columns: compiled.columns,
          groups,
          total,
          threshold,
          releaseIds: answer.releaseIds,
          context,
          mainReleases: plan.main,
          cohortReleases: plan.cohort.flat().map((release) => release.id),
          totalOverShown,
          options,
          withheldPatients: withheldPatientsOf(platform, answer, threshold),
        })
      : undefined;
  // From the ledger's check to its record, the holder's other results wait (ledger/lock.ts).
  try {
    const disclosed = applyDisclosureControl({
      groups,
      total,
      columns: compiled.columns,
      level: access.level,
      threshold,
      grouped,
      ...(ledger ? { ledger: ledger.verdict } : {}),
    });
    if (budget && noise) disclosed.rules.unshift(noiseRule(budget, noise));
    const rows = await store(disclosed);
    await ledger?.record(answer.jobId, rows, !disclosed.total.suppressed);
    return { disclosed, rows, total, totalOverShown, totalIsSmall: small(total) };
  } finally {
    await ledger?.release();
  }
}

/** The ledger's question to the engine: how many patients the withheld groups hold. */
function withheldPatientsOf(
  platform: PlatformParts,
  answer: RawAnswer,
  threshold: number,
): WithheldPatients {
  return async (groupBy, coarse) => {
    const statement = compileWithheldPatients(
      { ...answer.plan.spec, groupBy: [...groupBy] },
      { ...answer.context, minGroupPatients: threshold },
      coarse,
    );
    const found = await platform.engine.rows(statement, answer.options);
    return found.map((row) => ({
      values: coarse.map((_, index) => row[`c${index}`]),
      patients: Number(row.patients),
    }));
  };
}
