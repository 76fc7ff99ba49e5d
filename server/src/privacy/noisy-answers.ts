import { createHash } from 'node:crypto';
import {
  canonicalJson,
  measureOutputName,
  type DatasetContract,
  type QuerySpec,
} from '@medlake/shared';
import { privacySpendingRepository } from '../catalog/privacy-spending-repository.ts';
import { AppError } from '../errors.ts';
import type { Platform } from '../platform.ts';
import { hiddenPatients, hiddenRows, type ResultColumn } from '../query/compile-query.ts';
import type { AggregateRow, DisclosureRule } from '../query/disclosure.ts';
import { randomIntegers, sampleDiscreteLaplace } from './discrete-laplace.ts';

export type NoisePolicy = NonNullable<DatasetContract['privacy']['noise']>;

/**
 * Refuses a spec with measures that have no differentially private mechanism here: counts carry
 * noise, and sums of the columns the policy gives a range; means, percentiles and the like are
 * not given at all rather than given leakily.
 */
export function assertNoisyMeasures(spec: QuerySpec, noise: NoisePolicy): void {
  const refused = spec.measures.flatMap((measure, index) => {
    if (measure.fn === 'count' || measure.fn === 'patients') return [];
    if (measure.fn === 'sum' && noise.sums[measure.column]) return [];
    return [{ index, what: measure.fn === 'sum' ? `sum of ${measure.column}` : measure.fn }];
  });
  if (refused.length > 0) {
    const sums = Object.keys(noise.sums);
    throw new AppError(
      'VALIDATION_FAILED',
      `This dataset answers with noise for privacy, and only counts (count, patients)${sums.length > 0 ? ` and sums of ${sums.join(', ')}` : ''} can carry it: ${refused.map((item) => item.what).join(', ')} ${refused.length === 1 ? 'is' : 'are'} not available`,
      refused.map((item) => ({
        path: `measures[${item.index}]`,
        message: `${item.what} is not available on a dataset with noisy answers`,
      })),
    );
  }
}

/** What makes two answers the same: the spec and the releases it reads. */
export function answerKeyOf(spec: QuerySpec, releaseIds: readonly string[]): string {
  return createHash('sha256')
    .update(canonicalJson({ spec, releases: [...releaseIds].sort() }))
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
};

const micro = (epsilon: number) => Math.round(epsilon * 1_000_000);

/** The holder's budget on the dataset as it stands, and what the answer would cost. */
export async function budgetState(
  platform: Platform,
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
  return {
    cost: repeat ? 0 : noise.epsilonPerQuery,
    epsilonPerQuery: noise.epsilonPerQuery,
    spent: epsilonMicro / 1_000_000,
    budget: noise.budget.epsilon,
    windowDays: noise.budget.windowDays,
    repeat,
    freesAt: oldest ? new Date(oldest.getTime() + windowMs).toISOString() : null,
  };
}

/** Refuses an answer the budget cannot pay for. */
export function assertAffordable(state: BudgetState): void {
  if (micro(state.spent) + micro(state.cost) <= micro(state.budget)) return;
  throw new AppError(
    'RATE_LIMITED',
    `The privacy budget on this dataset is spent: ε ${state.spent} of ${state.budget} in the last ${state.windowDays} days, and this query costs ${state.cost}. ${state.freesAt ? `Budget frees up from ${state.freesAt.slice(0, 10)}; ` : ''}asking a query already answered costs nothing.`,
  );
}

/** Records what the answer cost (nothing for a repeat), after checking it can be paid. */
export async function spendBudget(
  platform: Platform,
  input: {
    holder: string;
    datasetId: string;
    answerKey: string;
    queryId: string;
    noise: NoisePolicy;
  },
): Promise<BudgetState> {
  const state = await budgetState(platform, input);
  assertAffordable(state);
  if (!state.repeat) {
    await privacySpendingRepository(platform.catalog.db).record({
      ...input,
      epsilonMicro: micro(state.cost),
    });
  }
  return { ...state, spent: state.spent + state.cost };
}

/**
 * Adds discrete Laplace noise to every count and sum of an aggregate result, in place: rows
 * (bounded to maxRowsPerPatient per patient by the compiler, so sensitivity maxRowsPerPatient),
 * patients (sensitivity 1) and sums (clamped and counted in steps by the compiler, sensitivity
 * maxRowsPerPatient × the largest value in steps). The query's ε is split evenly between the
 * groups, which are disjoint, and the total, which overlaps them, and within each between its
 * counts and sums. Each cell's noise
 * comes from the holder's secret stream for that answer and cell, so the same question gets the
 * same answer. Counts below zero become zero, which changes nothing of the guarantee.
 */
export function addNoise(
  platform: Platform,
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
): void {
  const { noise, columns } = input;
  // Each sum measure's result column and the range its column's values were clamped to.
  const sums = input.spec.measures.flatMap((measure) =>
    measure.fn === 'sum'
      ? [{ name: measureOutputName(measure), range: noise.sums[measure.column]! }]
      : [],
  );
  const parts = (input.grouped ? 2 : 1) * (2 + sums.length);
  // scale = sensitivity / (ε / parts), as a fraction of integers: ε in millionths.
  const scaleFor = (sensitivity: number) => ({
    numerator: BigInt(sensitivity * parts * 1_000_000),
    denominator: BigInt(micro(noise.epsilonPerQuery)),
  });
  const groupNames = columns
    .filter((column) => column.kind === 'group')
    .map((column) => column.name);
  const perturb = (row: AggregateRow, cell: string) => {
    const random = randomIntegers(
      platform.privacy.noiseBytes(`${input.holder}\n${input.answerKey}\n${cell}`),
    );
    const noisy = (value: number, sensitivity: number) => {
      const result = BigInt(value) + sampleDiscreteLaplace(random, scaleFor(sensitivity));
      return result < 0n ? 0 : Number(result);
    };
    row[hiddenPatients] = noisy(Number(row[hiddenPatients]), 1);
    row[hiddenRows] = noisy(Number(row[hiddenRows]), noise.maxRowsPerPatient);
    for (const column of columns) {
      if (column.fn === 'patients') row[column.name] = row[hiddenPatients];
      if (column.fn === 'count') row[column.name] = row[hiddenRows];
    }
    for (const { name, range } of sums) {
      // In steps: one patient moves the sum by at most maxRowsPerPatient × the largest value.
      const sensitivity =
        noise.maxRowsPerPatient *
        Math.ceil(Math.max(Math.abs(range.min), Math.abs(range.max)) / range.step);
      const steps = BigInt(Math.round(Number(row[name] ?? 0)));
      row[name] = Number(steps + sampleDiscreteLaplace(random, scaleFor(sensitivity))) * range.step;
    }
  };
  for (const group of input.groups) {
    perturb(group, canonicalJson(groupNames.map((name) => group[name] ?? null)));
  }
  perturb(input.total, 'total');
}

/** The rule the summary shows for a noisy answer. */
export function noiseRule(state: BudgetState, noise: NoisePolicy): DisclosureRule {
  const left = Math.max(0, state.budget - state.spent);
  return {
    rule: 'noise',
    description: `Counts carry random noise for privacy (discrete Laplace, ε ${noise.epsilonPerQuery} per query; each patient counted in at most ${noise.maxRowsPerPatient} rows). ${state.repeat ? 'You were given this answer before, so it is the same and cost nothing' : `This answer cost ε ${state.cost}`}; ε ${round(left)} of ${state.budget} is left for the last ${state.windowDays} days.`,
    affected: 0,
  };
}

function round(value: number): number {
  return Math.round(value * 1_000_000) / 1_000_000;
}
