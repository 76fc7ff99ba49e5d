import { readFile } from 'node:fs/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestPlatform, testActor, type TestPlatform } from '../../test/helper.ts';
import { contractFile, ingest, synthea } from '../../test/ingest-helpers.ts';
import { researcherWithAccess, runQuery } from '../../test/query-helpers.ts';
import type { User } from '../catalog/users-repository.ts';
import { addHospital, saveDataset } from '../use-cases/manage-datasets.ts';
import { describeDataset } from '../use-cases/queries/describe-dataset.ts';
import { priceQuery } from '../use-cases/queries/submit-query.ts';

type Row = Record<string, unknown> & { suppressed: boolean };

/**
 * A dataset that answers aggregate users with noisy counts from a budget (ε 0.5 per query, 1.5
 * per 30 days), beside `plain`, the same data with exact counts.
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
          epsilonPerQuery: 0.5,
          budget: { epsilon: 1.5, windowDays: 30 },
          maxRowsPerPatient: 20,
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
      cost: 0.5,
      epsilonPerQuery: 0.5,
      spent: 0,
      budget: 1.5,
      windowDays: 30,
      repeat: false,
      freesAt: null,
    });
    const truth = await ask(exact, 'plain', bySex);
    const first = await ask(researcher, 'noisy', bySex);
    const rule = first.job.summary?.rules.find((item) => item.rule === 'noise');
    expect(rule?.description).toMatch(
      /discrete Laplace, ε 0.5 per query.*This answer cost ε 0.5; ε 1 of 1.5 is left/,
    );
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
    expect(after).toMatchObject({ cost: 0, spent: 0.5, repeat: true });
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
    // At most 20 × 59 = 1,180 rows before noise of scale 20 / (0.5 / 2) = 80.
    expect(Number(noisy.rows[0]!.rows)).toBeLessThan(20 * patients + 1000);
  });

  it('refuses measures that have no private mechanism here', async () => {
    for (const measure of [
      { fn: 'mean', column: 'value' },
      { fn: 'sum', column: 'age' },
      { fn: 'percentile', column: 'value', p: 0.5 },
    ]) {
      await expect(
        runQuery(platform, researcher, {
          dataset: 'noisy',
          measures: [measure, { fn: 'patients' }],
        }),
      ).rejects.toThrow(
        /only counts \(count, patients\) and sums of value can carry it: .* is not available/,
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

  it('refuses a new question once the budget is spent, and still answers ones already answered', async () => {
    // Spent so far: 0.5 (by sex) and 0.5 (the bounded count); one more fits.
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
      /privacy budget on this dataset is spent: ε 1.5 of 1.5 in the last 30 days, and this query costs 0.5. Budget frees up from \d{4}-\d{2}-\d{2}/,
    );
    expect((await ask(researcher, 'noisy', bySex)).job.status).toBe('succeeded');
    // Another holder's budget is untouched.
    const other = await researcherWithAccess(platform, 'other@example.org', 'noisy', 'aggregate');
    expect(await priceQuery(platform, other, { dataset: 'noisy', ...bySex })).toMatchObject({
      cost: 0.5,
      spent: 0,
    });
  });
});
