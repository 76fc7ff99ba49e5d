import { readFile } from 'node:fs/promises';
import { querySpecSchema, type QuerySpec } from '@medlake/shared';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { attemptTally } from '../../test/attempts.ts';
import { createTestPlatform, testActor, type TestPlatform } from '../../test/helper.ts';
import { contractFile, ingest, synthea } from '../../test/ingest-helpers.ts';
import { researcherWithAccess, runQuery } from '../../test/query-helpers.ts';
import { testSparkUrl } from '../../test/spark.ts';
import type { User } from '../catalog/users-repository.ts';
import { createSparkEngine } from '../engines/spark/spark-engine.ts';
import type { QueryEngine } from '../engines/types.ts';
import type { Platform } from '../platform.ts';
import { noisePlan, type NoisePolicy } from '../privacy/noisy-answers.ts';
import { privacySecrets } from '../privacy/privacy-secrets.ts';
import { addHospital, saveDataset } from '../use-cases/manage-datasets.ts';

/**
 * Issue 27: noisy answers as differential privacy that holds end to end. First the accountant's
 * arithmetic against the definition; then the attacks on noise mode, as an aggregate
 * user of the Synthea fixture with a row-level account on the same dataset as the oracle of the
 * truth, on both engines (the bounding of groups per patient runs in the engine's SQL).
 *
 * The guarantee is a probability: a group of one patient's making shows with a chance of at
 * most δ / groups per patient. The platform's secret is fixed here, so each run draws the same
 * noise and the counts below are the same every run.
 */

type Row = Record<string, unknown> & { suppressed?: boolean };

const policy = (noise: Partial<NoisePolicy>): NoisePolicy => ({
  epsilonPerQuery: 1,
  delta: 1e-6,
  budget: { epsilon: 1000, windowDays: 30 },
  maxRowsPerPatient: 20,
  sums: {},
  ...noise,
});

const spec = (input: object): QuerySpec =>
  querySpecSchema.parse({ dataset: 'noisy', measures: [{ fn: 'patients' }], ...input });

/** A scale t = numerator / denominator as a number. */
const t = (scale: { numerator: bigint; denominator: bigint }) =>
  Number(scale.numerator) / Number(scale.denominator);

describe('the accountant, against the definition of differential privacy', () => {
  const range = { min: 0, max: 500, step: 0.5 };
  const cases = [
    { name: 'ungrouped counts', noise: policy({}), input: {} },
    {
      name: 'counts by code, a patient in up to 20 groups',
      noise: policy({}),
      input: { groupBy: [{ column: 'code' }], measures: [{ fn: 'patients' }, { fn: 'count' }] },
    },
    {
      name: 'counts, a sum, a mean and a percentile by code, at most 3 groups per patient',
      noise: policy({ maxGroupsPerPatient: 3, sums: { value: range } }),
      input: {
        groupBy: [{ column: 'code' }],
        measures: [
          { fn: 'patients' },
          { fn: 'sum', column: 'value' },
          { fn: 'mean', column: 'value' },
          { fn: 'percentile', column: 'value', p: 0.5 },
        ],
      },
    },
  ];

  it.each(cases)('charges exactly ε for $name', ({ noise, input }) => {
    const query = spec(input);
    const grouped = query.groupBy.length > 0;
    const plan = noisePlan(noise, query, grouped);
    const groups = Math.min(noise.maxGroupsPerPatient ?? noise.maxRowsPerPatient, 20);
    // The most one patient changes, cell by cell, between two data sets that differ by that
    // patient: 1 in the total's patient count and in that of each of up to `groups` groups;
    // up to maxRowsPerPatient rows, or values (counted, or binned for a percentile), spread
    // over them and all in the total; each of those values up to the range's largest, in steps,
    // in a sum.
    const steps = Math.ceil(range.max / range.step);
    const sums = query.measures.filter((measure) => measure.fn === 'sum').length;
    const means = query.measures.filter((measure) => measure.fn === 'mean').length;
    const percentiles = query.measures.filter((measure) => measure.fn === 'percentile').length;
    const rows = noise.maxRowsPerPatient;
    const lossOfTotal =
      1 / t(plan.patients.total) +
      rows / t(plan.rows) +
      (sums + means) * ((rows * steps) / t(plan.sum(range))) +
      (means + percentiles) * (rows / t(plan.rows));
    const lossOfGroups = grouped
      ? groups / t(plan.patients.groups) +
        rows / t(plan.rows) +
        (sums + means) * ((rows * steps) / t(plan.sum(range))) +
        (means + percentiles) * (rows / t(plan.rows))
      : 0;
    // The privacy loss of discrete Laplace noise of scale t on a cell that moves by Δ is Δ / t;
    // the cells' losses add up.
    const loss = lossOfTotal + lossOfGroups;
    expect(loss).toBeLessThanOrEqual(noise.epsilonPerQuery * (1 + 1e-9));
    // And no more noise than needed: the whole ε is used.
    expect(loss).toBeGreaterThanOrEqual(noise.epsilonPerQuery * (1 - 1e-9));
  });

  it.each(cases.filter((item) => 'groupBy' in item.input))(
    'sets the partition threshold so a group of one patient shows with a chance of at most δ / groups, for $name',
    ({ noise, input }) => {
      const plan = noisePlan(noise, spec(input), true);
      // A group of one patient shows when 1 + Z reaches the threshold; P(Z ≥ x) = q^x / (1 + q).
      const q = Math.exp(-1 / t(plan.patients.groups));
      const shows = (x: number) => q ** x / (1 + q);
      const bound = noise.delta / plan.groupsPerPatient;
      expect(shows(plan.threshold - 1)).toBeLessThanOrEqual(bound);
      // The lowest such threshold: one less would break the bound.
      expect(shows(plan.threshold - 2)).toBeGreaterThan(bound);
    },
  );
});

describe.each([{ engine: 'DuckDB' }, { engine: 'Spark' }])(
  'attacks on noisy answers on $engine, against a row-level oracle',
  ({ engine }) => {
    let testPlatform: TestPlatform;
    let platform: Platform;
    let spark: QueryEngine | undefined;
    let attacker: User;
    let oracle: User;
    const { tally, attempt } = attemptTally();
    /** Weak settings, so that some groups clear selection: ε 5 per query, 1 group per patient. */
    const dataset = 'noisy';

    const ask = async (user: User, input: object) => {
      const { job, rows } = await runQuery(platform, user, { dataset, ...input });
      expect(job.status, JSON.stringify(job.error)).toBe('succeeded');
      return rows as Row[];
    };
    /** The true patients of each group, by its labels, from the row-level account. */
    const truth = async (groupBy: object[], where?: object) => {
      const rows = await ask(oracle, {
        groupBy,
        measures: [{ fn: 'patients' }],
        ...(where ? { where } : {}),
      });
      const names = Object.keys(rows[0] ?? {}).filter((name) => name !== 'patients');
      return {
        names,
        patientsOf: (row: Row) =>
          Number(
            rows.find((candidate) => names.every((name) => candidate[name] === row[name]))
              ?.patients ?? 0,
          ),
        groups: rows,
      };
    };

    beforeAll(async () => {
      testPlatform = await createTestPlatform();
      await addHospital(testPlatform, testActor, { id: 'synthea', name: 'Synthea' });
      const contract = JSON.parse(await readFile(contractFile('synthea-observations'), 'utf8'));
      await saveDataset(testPlatform, {
        ...contract,
        name: dataset,
        title: 'Noisy',
        privacy: {
          noise: {
            epsilonPerQuery: 5,
            budget: { epsilon: 1000, windowDays: 30 },
            maxRowsPerPatient: 20,
            maxGroupsPerPatient: 1,
            sums: { value: { min: 0, max: 500, step: 0.5 } },
          },
        },
      });
      expect(
        (await ingest(testPlatform, { file: synthea('all'), dataset, month: '2021-06' })).status,
      ).toBe('published');
      attacker = await researcherWithAccess(testPlatform, 'agg@example.org', dataset, 'aggregate');
      oracle = await researcherWithAccess(testPlatform, 'row@example.org', dataset, 'row');
      // A fixed secret: the same noise every run (see above).
      const fixed = { ...testPlatform, privacy: privacySecrets(Buffer.alloc(32, 27)) };
      platform = fixed;
      if (engine === 'Spark') {
        spark = await createSparkEngine({ url: testSparkUrl(), store: testPlatform.store });
        platform = { ...fixed, engine: spark };
      }
    }, 180_000);

    afterAll(async () => {
      console.log(
        `noise attacks on ${engine} (class: tried, succeeded):\n` +
          [...tally]
            .map(([kind, { tried, succeeded }]) => `  ${kind}: ${tried}, ${succeeded}`)
            .join('\n'),
      );
      await spark?.close();
      await testPlatform?.dispose();
    });

    it('areas of one patient: grouping by ZIP code lists none of them', async () => {
      const groupBy = [{ column: 'zip' }];
      const real = await truth(groupBy);
      const single = real.groups.filter((row) => Number(row.patients) === 1);
      expect(single.length).toBeGreaterThan(5);
      const shown = await ask(attacker, { groupBy, measures: [{ fn: 'patients' }] });
      for (const area of single) {
        const listed = shown.some((row) => row.zip === area.zip);
        attempt('single-patient areas listed', listed, `ZIP ${String(area.zip)}`);
      }
    }, 300_000);

    it('labels as data: a grouping fine enough for one record per group reproduces no record', async () => {
      const groupBy = [
        { column: 'code' },
        { column: 'value', binWidth: 0.001 },
        { column: 'zip' },
        { column: 'sex' },
      ];
      const real = await truth(groupBy);
      const oneRecordGroups = real.groups.filter((row) => Number(row.patients) === 1);
      // Before partition selection, every one of these came back as a label.
      expect(oneRecordGroups.length).toBeGreaterThan(1000);
      const shown = await ask(attacker, { groupBy, measures: [{ fn: 'count' }] });
      for (const row of shown) {
        attempt('one-patient groups shown', real.patientsOf(row) === 1, JSON.stringify(row));
      }
      // Every shown group is counted as an attempt; none of them is one patient's.
      attempt('one-patient groups shown', false, 'the grouping as a whole');
    }, 300_000);

    it('extremes by sorting: the smallest and largest fine value of a code are no one patient’s', async () => {
      const codes = (await truth([{ column: 'code' }])).groups
        .filter((row) => Number(row.patients) >= 40)
        .map((row) => String(row.code))
        .slice(0, 4);
      expect(codes.length).toBeGreaterThan(0);
      for (const code of codes) {
        const where = { column: 'code', op: 'eq', value: code };
        const groupBy = [{ column: 'value', binWidth: 0.001 }];
        const real = await truth(groupBy, where);
        for (const direction of ['asc', 'desc'] as const) {
          const [first] = await ask(attacker, {
            where,
            groupBy,
            measures: [{ fn: 'count' }],
            orderBy: [{ by: 'value_bin', direction }],
            limit: 1,
          });
          const revealed = first !== undefined && real.patientsOf(first) === 1;
          attempt('exact extremes by sorting', revealed, `${direction} of ${code}`);
        }
      }
    }, 300_000);

    it('extremes by percentile: p 0.001 and 0.999 of a code give no patient’s exact value', async () => {
      const codes = (await truth([{ column: 'code' }])).groups
        .filter((row) => Number(row.patients) >= 40)
        .map((row) => String(row.code))
        .slice(0, 4);
      expect(codes.length).toBeGreaterThan(0);
      for (const code of codes) {
        const where = { column: 'code', op: 'eq', value: code };
        const [extremes] = await ask(oracle, {
          where,
          measures: [
            { fn: 'min', column: 'value' },
            { fn: 'max', column: 'value' },
          ],
        });
        const [answer] = await ask(attacker, {
          where,
          measures: [
            { fn: 'percentile', column: 'value', p: 0.001, as: 'low' },
            { fn: 'percentile', column: 'value', p: 0.999, as: 'high' },
          ],
        });
        for (const [shown, exact] of [
          [answer?.low, extremes?.value_min],
          [answer?.high, extremes?.value_max],
        ] as const) {
          const revealed = shown != null && Number(shown) === Number(exact);
          attempt('exact extremes by percentile', revealed, `${code}: ${String(shown)}`);
        }
      }
    }, 300_000);

    it('draws a percentile from noisy counts in bins of the range, in the engine’s SQL', async () => {
      const rows = await ask(attacker, {
        groupBy: [{ column: 'sex' }],
        measures: [{ fn: 'percentile', column: 'value', p: 0.5 }, { fn: 'patients' }],
      });
      expect(rows.length).toBeGreaterThan(0);
      for (const row of rows) {
        // 100 bins of 5 over 0..500: the middle of one.
        expect(((Number(row.value_p50) - 2.5) / 5) % 1).toBe(0);
      }
    }, 300_000);

    it('keeps each patient in at most the policy’s groups, in the engine’s SQL', async () => {
      // The true patients of all groups by code add up to far more than the patients: each is
      // in several. Bounded to one group each, the noisy patient counts of the groups shown
      // add up to about the patients, not to the sum of the truth.
      const real = await truth([{ column: 'code' }]);
      const patients = Number((await ask(oracle, { measures: [{ fn: 'patients' }] }))[0]?.patients);
      const inAll = real.groups.reduce((sum, row) => sum + Number(row.patients), 0);
      expect(inAll).toBeGreaterThan(10 * patients);
      const shown = await ask(attacker, {
        groupBy: [{ column: 'code' }],
        measures: [{ fn: 'patients' }],
      });
      const counted = shown.reduce((sum, row) => sum + Number(row.patients ?? 0), 0);
      // Noise of scale 0.8 per group cannot make up the difference.
      expect(counted).toBeLessThanOrEqual(patients + 3 * shown.length);
    }, 300_000);
  },
);

describe('the lifetime cap', () => {
  let platform: TestPlatform;
  afterAll(() => platform?.dispose());

  it('refuses a new question once the lifetime budget is spent, though the window has room', async () => {
    platform = await createTestPlatform();
    await addHospital(platform, testActor, { id: 'synthea', name: 'Synthea' });
    const contract = JSON.parse(await readFile(contractFile('synthea-observations'), 'utf8'));
    await saveDataset(platform, {
      ...contract,
      name: 'capped',
      title: 'Capped',
      privacy: {
        noise: {
          epsilonPerQuery: 1,
          budget: { epsilon: 100, windowDays: 30, lifetimeEpsilon: 2 },
        },
      },
    });
    await ingest(platform, { file: synthea('2021-04'), dataset: 'capped', month: '2021-04' });
    const researcher = await researcherWithAccess(
      platform,
      'capped@example.org',
      'capped',
      'aggregate',
    );
    const question = (column: string) => ({
      dataset: 'capped',
      groupBy: [{ column }],
      measures: [{ fn: 'patients' }],
    });
    const first = await runQuery(platform, researcher, question('sex'));
    expect(first.job.summary?.rules.find((rule) => rule.rule === 'noise')?.description).toMatch(
      /ε 99 of 100 is left for the last 30 days \(ε 1 of 2 for good\)/,
    );
    await runQuery(platform, researcher, question('race'));
    await expect(runQuery(platform, researcher, question('ethnicity'))).rejects.toThrow(
      /lifetime privacy budget on this dataset is spent: ε 2 of 2 in all, and this query costs 1. It does not renew/,
    );
    // An answer already given costs nothing and is given again.
    expect((await runQuery(platform, researcher, question('sex'))).job.status).toBe('succeeded');
  }, 120_000);
});
