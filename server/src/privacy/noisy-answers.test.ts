import { readFile } from 'node:fs/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestPlatform, testActor, type TestPlatform } from '../../test/helper.ts';
import { contractFile, ingest, synthea } from '../../test/ingest-helpers.ts';
import { researcherWithAccess, runQuery } from '../../test/query-helpers.ts';
import type { User } from '../catalog/users-repository.ts';
import { addHospital, saveDataset } from '../use-cases/manage-datasets.ts';
import { describeDataset } from '../use-cases/queries/describe-dataset.ts';
import { percentileOfBins } from './noisy-answers.ts';
import { priceQuery } from '../use-cases/queries/submit-query.ts';

type Row = Record<string, unknown> & { suppressed: boolean };

/**
 * A dataset that answers aggregate users with noisy counts from a budget (ε 5 per query, 15
 * per 30 days: large, so that the fixture's 59 patients clear partition selection in groups by
 * sex), beside `plain`, the same data with exact counts.
 */
describe('noisy answers with a privacy budget', () => {
  let platform: TestPlatform;
  let exact: User;
  let researcher: User;

  const bySex = { groupBy: [{ column: 'sex' }], measures: [{ fn: 'patients' }, { fn: 'count' }] };
  const ask = async (user: User, dataset: string, spec: object) => {
    const { job, rows } = await runQuery(platform, user, { dataset, ...spec });
    expect(job.status, JSON.stringify(job.error)).toBe('succeeded');
    const sorted = (rows as Row[]).toSorted((a, b) =>
      JSON.stringify(a).localeCompare(JSON.stringify(b)),
    );
    return { job, rows: sorted };
  };

  beforeAll(async () => {
    platform = await createTestPlatform();
    await addHospital(platform, testActor, { id: 'synthea', name: 'Synthea' });
    const contract = JSON.parse(await readFile(contractFile('synthea-observations'), 'utf8'));
    // Small-cell suppression alone, the release ledger turned off: exact counts to compare with.
    await saveDataset(platform, {
      ...contract,
      name: 'plain',
      title: 'Plain',
      privacy: { releaseLedger: false },
    });
    await saveDataset(platform, {
      ...contract,
      name: 'noisy',
      title: 'Noisy',
      privacy: {
        noise: {
          epsilonPerQuery: 5,
          budget: { epsilon: 15, windowDays: 30 },
          maxRowsPerPatient: 20,
          maxGroupsPerPatient: 1,
          sums: { value: { min: 0, max: 500, step: 0.5 } },
        },
      },
    });
    for (const dataset of ['plain', 'noisy']) {
      const result = await ingest(platform, { file: synthea('all'), dataset, month: '2021-06' });
      expect(result.status).toBe('published');
    }
    exact = await researcherWithAccess(platform, 'exact@example.org', 'plain', 'aggregate');
    researcher = await researcherWithAccess(platform, 'noisy@example.org', 'noisy', 'aggregate');
  }, 120_000);

  afterAll(async () => {
    await platform?.dispose();
  });

  it('shows the cost first, answers with noise, and gives the same answer again for nothing: averaging repeated answers learns nothing', async () => {
    const before = await priceQuery(platform, researcher, { dataset: 'noisy', ...bySex });
    expect(before).toEqual({
      noisy: true,
      cost: 5,
      epsilonPerQuery: 5,
      spent: 0,
      budget: 15,
      windowDays: 30,
      repeat: false,
      freesAt: null,
    });
    const truth = await ask(exact, 'plain', bySex);
    const first = await ask(researcher, 'noisy', bySex);
    const rule = first.job.summary?.rules.find((item) => item.rule === 'noise');
    expect(rule?.description).toMatch(
      /discrete Laplace, ε 5 and δ 0.000001 per query; each patient counted in at most 20 rows and 1 groups\).*This answer cost ε 5; ε 10 of 15 is left/,
    );
    // Both groups clear partition selection (about 30 patients each, threshold 13).
    expect(first.rows.map((row) => row.sex)).toEqual(['F', 'M']);
    // Noise is there: of six counts (patients and rows of two groups and the total), some moved.
    const counts = (result: typeof truth) => [
      ...result.rows.flatMap((row) => [row.patients, row.rows]),
      result.job.summary?.matching?.patients,
      result.job.summary?.matching?.rows,
    ];
    expect(counts(first)).not.toEqual(counts(truth));
    for (const count of counts(first))
      expect(Number.isInteger(Number(count)) || /^<\d+$/.test(String(count))).toBe(true);

    const answers = [first];
    for (let i = 0; i < 10; i += 1) answers.push(await ask(researcher, 'noisy', bySex));
    for (const answer of answers) expect(counts(answer)).toEqual(counts(first));
    // The average of repeated answers is the first answer: its error does not shrink.
    const femalePatients = (result: typeof truth) =>
      Number(result.rows.find((row) => row.sex === 'F')?.patients);
    const average =
      answers.reduce((sum, answer) => sum + femalePatients(answer), 0) / answers.length;
    expect(average).toBe(femalePatients(first));

    const after = await priceQuery(platform, researcher, { dataset: 'noisy', ...bySex });
    expect(after).toMatchObject({ cost: 0, spent: 5, repeat: true });
    expect(
      answers.at(-1)?.job.summary?.rules.find((item) => item.rule === 'noise')?.description,
    ).toMatch(/given this answer before, so it is the same and cost nothing/);
  });

  it('withholds the data dictionary’s exact counts per code, which would bypass the budget', async () => {
    const dictionary = await describeDataset(platform, researcher, 'noisy');
    expect(dictionary.codes.length).toBeGreaterThan(0);
    for (const entry of dictionary.codes)
      expect(entry).toMatchObject({ rows: 'withheld', patients: 'withheld' });
    expect(dictionary.rules[0]?.description).toMatch(/Counts per code are withheld/);
    const plain = await describeDataset(platform, exact, 'plain');
    expect(plain.codes.some((entry) => typeof entry.patients === 'number')).toBe(true);
  });

  it('counts each patient in at most maxRowsPerPatient rows', async () => {
    const total = await ask(exact, 'plain', { measures: [{ fn: 'count' }, { fn: 'patients' }] });
    const rows = Number(total.rows[0]!.rows);
    const patients = Number(total.rows[0]!.patients);
    expect(rows).toBeGreaterThan(20 * patients);
    const noisy = await ask(researcher, 'noisy', { measures: [{ fn: 'count' }] });
    // At most 20 × 59 = 1,180 rows before noise of scale 20 / (5 / 2) = 8.
    expect(Number(noisy.rows[0]!.rows)).toBeLessThan(20 * patients + 200);
  });

  it('refuses measures that have no private mechanism here', async () => {
    for (const measure of [
      { fn: 'mean', column: 'age' },
      { fn: 'sum', column: 'age' },
      { fn: 'percentile', column: 'age', p: 0.5 },
      { fn: 'stddev', column: 'value' },
    ]) {
      await expect(
        runQuery(platform, researcher, {
          dataset: 'noisy',
          measures: [measure, { fn: 'patients' }],
        }),
      ).rejects.toThrow(
        /only counts \(count, patients\) and sums, means and percentiles of value can carry it: .* is not available/,
      );
    }
  });

  it('adds up a column clamped to its range, with noise in whole steps', async () => {
    const summer = await researcherWithAccess(platform, 'sums@example.org', 'noisy', 'aggregate');
    const spec = {
      groupBy: [{ column: 'sex' }],
      measures: [{ fn: 'sum', column: 'value' }, { fn: 'patients' }],
    };
    const first = await ask(summer, 'noisy', spec);
    const again = await ask(summer, 'noisy', spec);
    expect(again.rows).toEqual(first.rows);
    for (const row of first.rows) {
      const sum = Number(row.value_sum);
      expect(Number.isFinite(sum)).toBe(true);
      // A whole number of half steps: the noise never leaves the grid.
      expect(Number.isInteger(sum * 2)).toBe(true);
    }
    expect(first.job.summary?.rules.map((rule) => rule.rule)).toContain('noise');
  });

  it('gives a mean of a column with a range as a noisy sum over a noisy count, within the range', async () => {
    const averager = await researcherWithAccess(platform, 'mean@example.org', 'noisy', 'aggregate');
    const spec = { measures: [{ fn: 'mean', column: 'value' }, { fn: 'patients' }] };
    const first = await ask(averager, 'noisy', spec);
    const mean = Number(first.rows[0]!.value_mean);
    expect(mean).toBeGreaterThan(0);
    expect(mean).toBeLessThanOrEqual(500);
    // The same question, the same answer (and no new cost).
    const again = await ask(averager, 'noisy', spec);
    expect(again.rows).toEqual(first.rows);
    expect(first.job.summary?.rules.find((rule) => rule.rule === 'noise')?.description).toMatch(
      /Counts, sums and means carry random noise/,
    );
  });

  it('gives a percentile of a column with a range from noisy counts in bins of the range', async () => {
    const asker = await researcherWithAccess(platform, 'median@example.org', 'noisy', 'aggregate');
    const spec = {
      groupBy: [{ column: 'sex' }],
      measures: [
        { fn: 'percentile', column: 'value', p: 0.5 },
        { fn: 'percentile', column: 'value', p: 0.9 },
        { fn: 'patients' },
      ],
    };
    const first = await ask(asker, 'noisy', spec);
    expect(first.rows.length).toBeGreaterThan(0);
    for (const row of [...first.rows, first.job.summary?.total ?? {}]) {
      const [median, p90] = [Number(row.value_p50), Number(row.value_p90)];
      // 100 bins of 5 over 0..500: a bin's middle, 2.5, 7.5, …
      for (const value of [median, p90]) {
        expect(value).toBeGreaterThan(0);
        expect(value).toBeLessThan(500);
        expect(((value - 2.5) / 5) % 1).toBe(0);
      }
      expect(p90).toBeGreaterThanOrEqual(median);
    }
    expect((await ask(asker, 'noisy', spec)).rows).toEqual(first.rows);
  });

  it('refuses a new question once the budget is spent, and still answers ones already answered', async () => {
    // Spent so far: 5 (by sex) and 5 (the bounded count); one more fits.
    await ask(researcher, 'noisy', {
      groupBy: [{ column: 'race' }],
      measures: [{ fn: 'patients' }],
    });
    await expect(
      runQuery(platform, researcher, {
        dataset: 'noisy',
        groupBy: [{ column: 'ethnicity' }],
        measures: [{ fn: 'patients' }],
      }),
    ).rejects.toThrow(
      /privacy budget on this dataset is spent: ε 15 of 15 in the last 30 days, and this query costs 5. Budget frees up from \d{4}-\d{2}-\d{2}/,
    );
    expect((await ask(researcher, 'noisy', bySex)).job.status).toBe('succeeded');
    // Another holder's budget is untouched.
    const other = await researcherWithAccess(platform, 'other@example.org', 'noisy', 'aggregate');
    expect(await priceQuery(platform, other, { dataset: 'noisy', ...bySex })).toMatchObject({
      cost: 5,
      spent: 0,
    });
  });
});

describe('a percentile from counts in bins', () => {
  const bins = { min: 0, width: 10 };
  it('is the middle of the first bin where the running count reaches p of all', () => {
    expect(percentileOfBins([0, 4, 4, 2], 0.5, bins)).toBe(25);
    expect(percentileOfBins([0, 4, 4, 2], 0.9, bins)).toBe(35);
    expect(percentileOfBins([3, 0, 0, 0], 0.99, bins)).toBe(5);
    expect(percentileOfBins([0, 0, 0, 1], 0, bins)).toBe(35);
  });

  it('is none when no value is counted', () => {
    expect(percentileOfBins([0, 0, 0], 0.5, bins)).toBeNull();
  });
});
