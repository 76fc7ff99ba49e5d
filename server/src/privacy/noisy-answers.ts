import { createHash } from 'node:crypto';
import {
  canonicalJson,
  measureOutputName,
  type DatasetContract,
  type QuerySpec,
} from '@medlake/shared';
import { privacySpendingRepository } from '../catalog/privacy-spending-repository.ts';
import { AppError } from '../errors.ts';
import type { PlatformParts } from '../platform-parts.ts';
import { hiddenPatients, hiddenRows, type ResultColumn } from '../query/compile-query.ts';
import type { AggregateRow, DisclosureRule } from '../query/disclosure.ts';
import { lockReleaseLedger } from '../query/ledger/lock.ts';
import { randomIntegers, sampleDiscreteLaplace } from './discrete-laplace.ts';

export type NoisePolicy = NonNullable<DatasetContract['privacy']['noise']>;

/**
 * Refuses a spec with measures that have no differentially private mechanism here: counts carry
 * noise, and sums and means of the columns the policy gives a range; percentiles and the like
 * are not given at all rather than given leakily.
 */
export function assertNoisyMeasures(spec: QuerySpec, noise: NoisePolicy): void {
  const refused = spec.measures.flatMap((measure, index) => {
    if (measure.fn === 'count' || measure.fn === 'patients') return [];
    const ranged = measure.fn === 'sum' || measure.fn === 'mean' || measure.fn === 'percentile';
    if (ranged && noise.sums[measure.column]) return [];
    const what = ranged ? `${measure.fn} of ${measure.column}` : measure.fn;
    return [{ index, what }];
  });
  if (refused.length > 0) {
    const sums = Object.keys(noise.sums);
    throw new AppError(
      'measure_not_private',
      `This dataset answers with noise for privacy, and only counts (count, patients)${sums.length > 0 ? ` and sums, means and percentiles of ${sums.join(', ')}` : ''} can carry it: ${refused.map((item) => item.what).join(', ')} ${refused.length === 1 ? 'is' : 'are'} not available`,
      refused.map((item) => ({
        path: `measures[${item.index}]`,
        message: `${item.what} is not available on a dataset with noisy answers`,
      })),
    );
  }
}

/**
 * What makes two answers the same: the spec, the releases it reads, and the parts of the policy
 * that shape the answer (its ε, δ and bounds). A changed policy gives a new answer, which costs
 * anew: else an old question would be answered again, with other noise, for nothing.
 */
export function answerKeyOf(
  spec: QuerySpec,
  releaseIds: readonly string[],
  noise: NoisePolicy,
): string {
  const policy = {
    epsilonPerQuery: noise.epsilonPerQuery,
    delta: noise.delta,
    maxRowsPerPatient: noise.maxRowsPerPatient,
    groupsPerPatient: groupsPerPatient(noise),
    sums: noise.sums,
  };
  return createHash('sha256')
    .update(canonicalJson({ spec, releases: [...releaseIds].sort(), policy }))
    .digest('hex');
}

export type BudgetState = {
  /** What this query costs: nothing when the same answer was given before. */
  cost: number;
  epsilonPerQuery: number;
  spent: number;
  budget: number;
  windowDays: number;
  repeat: boolean;
  /** When the oldest spending in the window stops counting. */
  freesAt: string | null;
  /** All the holder ever spent on the dataset, and its cap, when the contract sets one. */
  lifetime?: { spent: number; cap: number };
};

const micro = (epsilon: number) => Math.round(epsilon * 1_000_000);

/** The holder's budget on the dataset as it stands, and what the answer would cost. */
export async function budgetState(
  platform: PlatformParts,
  input: { holder: string; datasetId: string; answerKey: string; noise: NoisePolicy },
): Promise<BudgetState> {
  const { noise } = input;
  const windowMs = noise.budget.windowDays * 86_400_000;
  const spending = privacySpendingRepository(platform.catalog.db);
  const { epsilonMicro, oldest } = await spending.spentSince(
    input.holder,
    input.datasetId,
    new Date(Date.now() - windowMs),
  );
  const repeat = await spending.answered(input.holder, input.datasetId, input.answerKey);
  const cap = noise.budget.lifetimeEpsilon;
  const lifetime =
    cap === undefined
      ? undefined
      : (await spending.spentSince(input.holder, input.datasetId, new Date(0))).epsilonMicro;
  return {
    cost: repeat ? 0 : noise.epsilonPerQuery,
    epsilonPerQuery: noise.epsilonPerQuery,
    spent: epsilonMicro / 1_000_000,
    budget: noise.budget.epsilon,
    windowDays: noise.budget.windowDays,
    repeat,
    freesAt: oldest ? new Date(oldest.getTime() + windowMs).toISOString() : null,
    ...(cap === undefined || lifetime === undefined
      ? {}
      : { lifetime: { spent: lifetime / 1_000_000, cap } }),
  };
}

/** Refuses an answer the budget, or the lifetime cap, cannot pay for. */
export function assertAffordable(state: BudgetState): void {
  const { lifetime } = state;
  if (lifetime && micro(lifetime.spent) + micro(state.cost) > micro(lifetime.cap)) {
    throw new AppError(
      'lifetime_budget_spent',
      `The lifetime privacy budget on this dataset is spent: ε ${lifetime.spent} of ${lifetime.cap} in all, and this query costs ${state.cost}. It does not renew; asking a query already answered costs nothing.`,
    );
  }
  if (micro(state.spent) + micro(state.cost) <= micro(state.budget)) return;
  throw new AppError(
    'budget_spent',
    `The privacy budget on this dataset is spent: ε ${state.spent} of ${state.budget} in the last ${state.windowDays} days, and this query costs ${state.cost}. ${state.freesAt ? `Budget frees up from ${state.freesAt.slice(0, 10)}; ` : ''}asking a query already answered costs nothing.`,
  );
}

/** Records what the answer cost (nothing for a repeat), after checking it can be paid. */
export async function spendBudget(
  platform: PlatformParts,
  input: {
    holder: string;
    datasetId: string;
    answerKey: string;
    queryId: string;
    noise: NoisePolicy;
  },
): Promise<BudgetState> {
  // From reading what was spent to recording this, no other answer of the holder may spend:
  // two new questions at once would each see the budget before both. The release ledger's
  // lock (per holder and dataset, across servers) serves; the ledger is off with noise.
  const unlock = await lockReleaseLedger(platform.catalog, [input.holder], input.datasetId);
  let state: BudgetState;
  try {
    state = await budgetState(platform, input);
    assertAffordable(state);
    if (!state.repeat) {
      await privacySpendingRepository(platform.catalog.db).record({
        ...input,
        epsilonMicro: micro(state.cost),
      });
    }
  } finally {
    await unlock();
  }
  return {
    ...state,
    spent: state.spent + state.cost,
    ...(state.lifetime
      ? { lifetime: { ...state.lifetime, spent: state.lifetime.spent + state.cost } }
      : {}),
  };
}

/** The most groups of one query a patient's rows are counted in (the compiler keeps to it). */
export function groupsPerPatient(noise: NoisePolicy): number {
  return Math.min(noise.maxGroupsPerPatient ?? noise.maxRowsPerPatient, noise.maxRowsPerPatient);
}

/** A discrete Laplace scale t = numerator / denominator. */
type Scale = { numerator: bigint; denominator: bigint };

/**
 * How much noise each figure of an answer gets, and the partition selection threshold. The
 * query's ε is split evenly into `parts`: for the groups and, apart, for the total (which
 * overlaps them), each a count of patients, a count of rows, every sum (a mean is a sum and
 * a count of values), and every percentile (its values counted in bins of the range). Within the groups each part's noise is scaled to the L1 sensitivity of
 * that figure across all groups, over what one patient can change: patients, the groups one
 * patient is counted in (groupsPerPatient); rows, counts of values and a percentile's bins,
 * maxRowsPerPatient; a sum,
 * maxRowsPerPatient × its largest value in steps. For the total the patients' sensitivity is 1.
 * So the privacy loss of an answer on two data sets that differ by one patient's rows is at
 * most ε (each part at most ε / parts), except for groups that exist through that patient
 * alone, each shown with a chance of at most δ / groupsPerPatient: a group is shown only when its
 * noisy patient count reaches `threshold`.
 */
export function noisePlan(noise: NoisePolicy, spec: QuerySpec, grouped: boolean) {
  const sums = spec.measures.filter((measure) => measure.fn === 'sum').length;
  const means = spec.measures.filter((measure) => measure.fn === 'mean').length;
  const percentiles = spec.measures.filter((measure) => measure.fn === 'percentile').length;
  const parts = (grouped ? 2 : 1) * (2 + sums + 2 * means + percentiles);
  const share = noise.epsilonPerQuery / parts;
  // scale = sensitivity / (ε / parts), as a fraction of integers: ε in millionths.
  const scale = (sensitivity: number): Scale => ({
    numerator: BigInt(sensitivity * parts * 1_000_000),
    denominator: BigInt(micro(noise.epsilonPerQuery)),
  });
  const groups = groupsPerPatient(noise);
  const stepsOf = (range: { min: number; max: number; step: number }) =>
    Math.ceil(Math.max(Math.abs(range.min), Math.abs(range.max)) / range.step);
  // A group of one patient's making shows if its noisy count, 1 + Z, reaches the threshold:
  // P(Z ≥ x) = q^x / (1 + q) for the discrete Laplace with q = e^(−1/t), x ≥ 1; it must be at
  // most δ / groups, for each of the groups one patient can make.
  const t = groups / share;
  const q = Math.exp(-1 / t);
  const threshold = 1 + Math.max(1, Math.ceil(t * Math.log(groups / (noise.delta * (1 + q)))));
  return {
    parts,
    share,
    threshold,
    groupsPerPatient: groups,
    patients: { groups: scale(groups), total: scale(1) },
    rows: scale(noise.maxRowsPerPatient),
    sum: (range: { min: number; max: number; step: number }) =>
      scale(noise.maxRowsPerPatient * stepsOf(range)),
  };
}

/**
 * Adds discrete Laplace noise to every count, sum and mean of an aggregate result, in place, as
 * noisePlan says, and keeps only the groups whose noisy patient count reaches its threshold
 * (partition selection): returns the groups kept. Each cell's noise comes from the holder's
 * secret stream for that answer and cell, so the same question gets the same answer. Counts
 * below zero become zero, which changes nothing of the guarantee.
 */
export function addNoise(
  platform: PlatformParts,
  input: {
    holder: string;
    answerKey: string;
    noise: NoisePolicy;
    spec: QuerySpec;
    columns: readonly ResultColumn[];
    groups: AggregateRow[];
    total: AggregateRow;
    grouped: boolean;
  },
): AggregateRow[] {
  const { noise, columns } = input;
  const plan = noisePlan(noise, input.spec, input.grouped);
  // Each sum's and mean's result column and the range its column's values were clamped to.
  const clamped = input.spec.measures.flatMap((measure) =>
    measure.fn === 'sum' || measure.fn === 'mean'
      ? [{ name: measureOutputName(measure), range: noise.sums[measure.column]! }]
      : [],
  );
  const groupNames = columns
    .filter((column) => column.kind === 'group')
    .map((column) => column.name);
  const perturb = (row: AggregateRow, cell: string, isTotal: boolean) => {
    const random = randomIntegers(
      platform.privacy.noiseBytes(`${input.holder}\n${input.answerKey}\n${cell}`),
    );
    const noisy = (value: number, scale: Scale) => {
      const result = BigInt(value) + sampleDiscreteLaplace(random, scale);
      return result < 0n ? 0 : Number(result);
    };
    row[hiddenPatients] = noisy(
      Number(row[hiddenPatients]),
      isTotal ? plan.patients.total : plan.patients.groups,
    );
    row[hiddenRows] = noisy(Number(row[hiddenRows]), plan.rows);
    for (const column of columns) {
      if (column.fn === 'patients') row[column.name] = row[hiddenPatients];
      if (column.fn === 'count') row[column.name] = row[hiddenRows];
    }
    for (const { name, range } of clamped) {
      const steps = BigInt(Math.round(Number(row[name] ?? 0)));
      const sum = Number(steps + sampleDiscreteLaplace(random, plan.sum(range))) * range.step;
      const meanCount = columns.find((column) => column.name === name)?.meanCount;
      if (meanCount === undefined) {
        row[name] = sum;
        continue;
      }
      // A mean: the noisy sum over the noisy count of values, kept within the range.
      const count = noisy(Number(row[meanCount] ?? 0), plan.rows);
      row[name] = count === 0 ? null : Math.min(range.max, Math.max(range.min, sum / count));
    }
    for (const column of columns) {
      if (column.noisyBins === undefined || column.p === undefined) continue;
      // Every bin of the range gets noise, empty ones too: which bins hold values is data.
      const counts = new Array<number>(column.noisyBins.bins).fill(0);
      for (const entry of (row[column.name] ?? []) as Array<{ key: unknown; value: unknown }>) {
        const bin = Number(entry.key);
        if (bin >= 0 && bin < counts.length) counts[bin] = Number(entry.value);
      }
      row[column.name] = percentileOfBins(
        counts.map((count) => noisy(count, plan.rows)),
        column.p,
        column.noisyBins,
      );
    }
  };
  perturb(input.total, 'total', true);
  // An ungrouped answer's one row is its total (runAggregate): noised once, as the plan counts it.
  if (!input.grouped) return input.groups.map(() => input.total);
  const kept: AggregateRow[] = [];
  for (const group of input.groups) {
    perturb(group, canonicalJson(groupNames.map((name) => group[name] ?? null)), false);
    if (group[hiddenPatients] >= plan.threshold) kept.push(group);
  }
  return kept;
}

/**
 * The percentile p of values counted in equal bins: the middle of the first bin at which the
 * running count reaches p of all; none when no value is counted. Post-processing of the noisy
 * counts, so it costs nothing beyond them.
 */
export function percentileOfBins(
  counts: readonly number[],
  p: number,
  bins: { min: number; width: number },
): number | null {
  const all = counts.reduce((sum, count) => sum + count, 0);
  if (all === 0) return null;
  let running = 0;
  for (const [index, count] of counts.entries()) {
    running += count;
    if (running >= p * all && running > 0) return bins.min + (index + 0.5) * bins.width;
  }
  return bins.min + (counts.length - 0.5) * bins.width;
}

/** The rule the summary shows for a noisy answer. */
export function noiseRule(state: BudgetState, noise: NoisePolicy): DisclosureRule {
  const left = Math.max(0, state.budget - state.spent);
  const lifetime = state.lifetime
    ? ` (ε ${round(Math.max(0, state.lifetime.cap - state.lifetime.spent))} of ${state.lifetime.cap} for good)`
    : '';
  return {
    rule: 'noise',
    description: `Counts, sums and means carry random noise for privacy (discrete Laplace, ε ${noise.epsilonPerQuery} and δ ${noise.delta} per query; each patient counted in at most ${noise.maxRowsPerPatient} rows and ${groupsPerPatient(noise)} groups). A group is shown only where its noisy count of patients is high enough, so groups of few patients do not appear. ${state.repeat ? 'You were given this answer before, so it is the same and cost nothing' : `This answer cost ε ${state.cost}`}; ε ${round(left)} of ${state.budget} is left for the last ${state.windowDays} days${lifetime}.`,
    affected: 0,
  };
}

function round(value: number): number {
  return Math.round(value * 1_000_000) / 1_000_000;
}
