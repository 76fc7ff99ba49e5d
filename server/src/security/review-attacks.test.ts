import { readFile } from 'node:fs/promises';
import { sql } from 'kysely';
import { querySpecSchema } from '@medlake/shared';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { attemptTally } from '../../test/attempts.ts';
import { createTestPlatform, testActor, type TestPlatform } from '../../test/helper.ts';
import { contractFile, ingest, synthea } from '../../test/ingest-helpers.ts';
import { researcherWithAccess, runQuery } from '../../test/query-helpers.ts';
import { queryJobsRepository } from '../catalog/query-jobs-repository.ts';
import { createLogger } from '../logger.ts';
import { executeQueryJob } from '../use-cases/queries/query-worker.ts';
import { getQuery } from '../use-cases/queries/read-query.ts';
import { submitQuery } from '../use-cases/queries/submit-query.ts';
import { releasesRepository } from '../catalog/releases-repository.ts';
import type { User } from '../catalog/users-repository.ts';
import type { Platform } from '../platform.ts';
import { addNoise, noisePlan, type NoisePolicy } from '../privacy/noisy-answers.ts';
import { privacySecrets } from '../privacy/privacy-secrets.ts';
import { hiddenPatients, hiddenRows, type ResultColumn } from '../query/compile-query.ts';
import type { AggregateRow } from '../query/disclosure.ts';
import { grantDatasetAccess } from '../use-cases/manage-access.ts';
import { addHospital, saveDataset } from '../use-cases/manage-datasets.ts';

/**
 * An outside review of the aggregate-access promises (2026-12-06): noisy answers with a budget,
 * and percentiles judged with the catalog's bound on rows per patient. Each attack is written
 * to assert that the promise holds, with a row-level account as the oracle of the truth.
 */

type Row = Record<string, unknown> & { suppressed?: boolean };

describe('noise: an ungrouped answer is one cell, noised once', () => {
  // An ungrouped aggregate's one row is both its group and its total (runAggregate): noising it
  // twice spends the exact count of a mean's values twice, and treats an already noisy sum (in
  // the column's units) as a number of steps.
  const platform = { privacy: privacySecrets(Buffer.alloc(32, 7)) } as unknown as Platform;
  const policy: NoisePolicy = {
    epsilonPerQuery: 10,
    delta: 1e-6,
    budget: { epsilon: 1000, windowDays: 30 },
    maxRowsPerPatient: 1,
    sums: { value: { min: 0, max: 2, step: 0.5 } },
  };
  const spec = querySpecSchema.parse({
    dataset: 'review',
    measures: [{ fn: 'patients' }, { fn: 'sum', column: 'value' }, { fn: 'mean', column: 'value' }],
  });
  const columns: ResultColumn[] = [
    { name: 'patients', kind: 'measure', type: 'integer', fn: 'patients' },
    { name: 'value_sum', kind: 'measure', type: 'double', fn: 'sum' },
    { name: 'value_mean', kind: 'measure', type: 'double', fn: 'mean', meanCount: '__mc2' },
  ];

  it('gives the sum and the mean of 10,000 values of 1.5 within noise of the truth', () => {
    // 10,000 patients with one value of 1.5 each: 30,000 half steps.
    const row = {
      patients: 10_000,
      value_sum: 30_000,
      value_mean: 30_000,
      __mc2: 10_000,
      [hiddenPatients]: 10_000,
      [hiddenRows]: 10_000,
    } as unknown as AggregateRow;
    const plan = noisePlan(policy, spec, false);
    const sumScale =
      Number(plan.sum(policy.sums.value!).numerator) /
      Number(plan.sum(policy.sums.value!).denominator);
    // As runAggregate gives an ungrouped answer: groups = [total], the same row.
    const shown = addNoise(platform, {
      holder: 'h',
      answerKey: 'k',
      noise: policy,
      spec,
      columns,
      groups: [row],
      total: row,
      grouped: false,
    });
    expect(shown[0]).toBe(row);
    // Within 20 noise scales (in half steps) of 15,000, and the mean within 0.01 of 1.5.
    expect(Math.abs(Number(row.value_sum) - 15_000)).toBeLessThan(20 * sumScale * 0.5);
    expect(Math.abs(Number(row.value_mean) - 1.5)).toBeLessThan(0.01);
  });
});

describe('attacks on noisy answers and catalog-bounded percentiles, against a row-level oracle', () => {
  let testPlatform: TestPlatform;
  let platform: Platform;
  let attacker: User;
  let oracle: User;
  const { tally, attempt } = attemptTally();
  const noisy = 'review-noisy';
  const exact = 'review-exact';
  const noise = {
    epsilonPerQuery: 5,
    budget: { epsilon: 1000, windowDays: 30 },
    maxRowsPerPatient: 20,
    maxGroupsPerPatient: 1,
    sums: { value: { min: 0, max: 500, step: 0.5 } },
  };
  let contract: Record<string, unknown>;

  const ask = async (user: User, input: object) => {
    const { job, rows } = await runQuery(platform, user, input);
    expect(job.status, JSON.stringify(job.error)).toBe('succeeded');
    return { job, rows: rows as Row[] };
  };
  /** ε spent so far, as the noise rule of a result says it. */
  const spentOf = (job: Awaited<ReturnType<typeof ask>>['job']) => {
    const text = job.summary?.rules.find((rule) => rule.rule === 'noise')?.description ?? '';
    const left = /ε ([\d.]+) of ([\d.]+) is left/.exec(text);
    return left ? Number(left[2]) - Number(left[1]) : NaN;
  };

  beforeAll(async () => {
    testPlatform = await createTestPlatform();
    platform = { ...testPlatform, privacy: privacySecrets(Buffer.alloc(32, 61)) };
    await addHospital(testPlatform, testActor, { id: 'synthea', name: 'Synthea' });
    await addHospital(testPlatform, testActor, { id: 'second', name: 'Second' });
    contract = JSON.parse(await readFile(contractFile('synthea-observations'), 'utf8'));
    await saveDataset(testPlatform, {
      ...contract,
      name: noisy,
      title: 'Noisy',
      privacy: { noise },
    });
    await saveDataset(testPlatform, {
      ...contract,
      name: exact,
      title: 'Exact',
      patientIdSpace: 'shared',
    });
    expect(
      (await ingest(testPlatform, { file: synthea('all'), dataset: noisy, month: '2021-06' }))
        .status,
    ).toBe('published');
    // The exact dataset: the same patients (one id space) at two hospitals and in two months,
    // and one month uploaded twice (the first release replaced by one without its last row).
    const full = (await readFile(synthea('all'), 'utf8')).trimEnd();
    for (const [month, hospital, text] of [
      ['2021-06', 'synthea', full],
      ['2021-06', 'second', full],
      ['2021-07', 'synthea', full],
      ['2021-07', 'synthea', full.split('\n').slice(0, -1).join('\n')],
    ] as const) {
      const result = await ingest(testPlatform, { text, dataset: exact, month, hospital });
      expect(result.status).toBe('published');
    }
    attacker = await researcherWithAccess(testPlatform, 'agg@example.org', noisy, 'aggregate');
    oracle = await researcherWithAccess(testPlatform, 'row@example.org', noisy, 'row');
    await grantDatasetAccess(testPlatform, testActor, {
      email: 'agg@example.org',
      datasetId: exact,
      level: 'aggregate',
    });
    await grantDatasetAccess(testPlatform, testActor, {
      email: 'row@example.org',
      datasetId: exact,
      level: 'row',
    });
  }, 300_000);

  afterAll(async () => {
    console.log(
      'review attacks (class: tried, succeeded):\n' +
        [...tally]
          .map(([kind, { tried, succeeded }]) => `  ${kind}: ${tried}, ${succeeded}`)
          .join('\n'),
    );
    await testPlatform?.dispose();
  });

  it('measures past assertNoisyMeasures: histograms, percentiles of columns without a range, min, max, stddev are refused', async () => {
    for (const measure of [
      { fn: 'histogram', column: 'value', binWidth: 1 },
      { fn: 'percentile', column: 'age', p: 0.99 },
      { fn: 'min', column: 'value' },
      { fn: 'max', column: 'observed_at' },
      { fn: 'stddev', column: 'value' },
      { fn: 'sum', column: 'age' },
    ]) {
      let refused = false;
      try {
        await runQuery(platform, attacker, {
          dataset: noisy,
          groupBy: [{ column: 'sex' }],
          measures: [{ fn: 'patients' }, measure],
        });
      } catch {
        refused = true;
      }
      attempt('a measure without noise answered', !refused, JSON.stringify(measure));
    }
  }, 120_000);

  it('fresh noise never comes without fresh cost: equivalent specs each cost ε', async () => {
    const base = {
      dataset: noisy,
      where: {
        and: [
          { column: 'sex', op: 'eq', value: 'F' },
          { column: 'value', op: 'gte', value: 0 },
        ],
      },
      groupBy: [{ column: 'race' }],
      measures: [{ fn: 'patients' }],
    };
    const variants = [
      base,
      { ...base, measures: [{ fn: 'patients', as: 'n' }] },
      { ...base, orderBy: [{ by: 'patients', direction: 'desc' }] },
      { ...base, limit: 50 },
      { ...base, where: { and: [...base.where.and].reverse() } },
      { ...base, where: { and: [...base.where.and, { column: 'value', op: 'gte', value: -1 }] } },
    ];
    let spent = spentOf((await ask(attacker, { dataset: noisy, measures: [{ fn: 'count' }] })).job);
    const answers: string[] = [];
    for (const variant of variants) {
      const { job, rows } = await ask(attacker, variant);
      const now = spentOf(job);
      const answer = JSON.stringify(rows.map((row) => [row.race, row.patients ?? row.n]).sort());
      const fresh = !answers.includes(answer);
      answers.push(answer);
      attempt(
        'fresh noise for free',
        fresh && now - spent < noise.epsilonPerQuery - 1e-9,
        `${JSON.stringify(variant)}: spent ${spent} → ${now}`,
      );
      spent = now;
    }
    // Re-reading the same result sorted another way is not a new answer.
    const { job } = await ask(attacker, base);
    expect(spentOf(job)).toBe(spent);
  }, 300_000);

  it('the summary says nothing of the groups left out by selection', async () => {
    const groupBy = [{ column: 'zip' }];
    const truth = await ask(oracle, { dataset: noisy, groupBy, measures: [{ fn: 'patients' }] });
    const small = truth.rows.filter((row) => Number(row.patients) < 11).length;
    expect(small).toBeGreaterThan(5);
    const { job, rows } = await ask(attacker, {
      dataset: noisy,
      groupBy,
      measures: [{ fn: 'patients' }],
    });
    const summary = job.summary!;
    attempt(
      'withheld groups counted',
      summary.withheldGroups === small ||
        summary.withheldGroups === truth.rows.length - rows.length,
      `withheldGroups ${summary.withheldGroups}, true small groups ${small}`,
    );
    const text = summary.keyPoints.join(' ');
    // A figure as a whole number: the noisy row count "1,233 rows" does not state 33 groups.
    const states = (n: number, after = ' ') => new RegExp(`(?<![\\d,.])${n}${after}`).test(text);
    attempt(
      'true number of groups in the key points',
      states(truth.rows.length, ' groups') || states(small),
      text,
    );
  }, 300_000);

  it('a cohort narrowed to one patient shows none of the patient’s codes', async () => {
    // One ZIP area of a single patient, as the oracle says.
    const zips = await ask(oracle, {
      dataset: noisy,
      groupBy: [{ column: 'zip' }],
      measures: [{ fn: 'patients' }],
    });
    const lone = zips.rows.filter((row) => Number(row.patients) === 1).slice(0, 3);
    expect(lone.length).toBeGreaterThan(0);
    for (const area of lone) {
      const cohort = { criteria: [{ where: { column: 'zip', op: 'eq', value: area.zip } }] };
      for (const groupBy of [[{ column: 'code' }], [{ column: 'value', binWidth: 10 }]]) {
        const { rows } = await ask(attacker, {
          dataset: noisy,
          cohort,
          groupBy,
          measures: [{ fn: 'patients' }, { fn: 'mean', column: 'value' }],
        });
        attempt(
          'a lone patient’s groups shown through a cohort',
          rows.length > 0,
          `${String(area.zip)}: ${JSON.stringify(rows.slice(0, 3))}`,
        );
      }
    }
  }, 300_000);

  it('sorting and limiting after selection: the top group by noisy count is a shown one', async () => {
    const groupBy = [{ column: 'race' }, { column: 'sex' }];
    const truth = await ask(oracle, { dataset: noisy, groupBy, measures: [{ fn: 'patients' }] });
    const patientsOf = (row: Row) =>
      Number(
        truth.rows.find((item) => item.race === row.race && item.sex === row.sex)?.patients ?? 0,
      );
    for (const direction of ['asc', 'desc'] as const) {
      const { rows } = await ask(attacker, {
        dataset: noisy,
        groupBy,
        measures: [{ fn: 'patients' }],
        orderBy: [{ by: 'patients', direction }],
        limit: 1,
      });
      for (const row of rows) {
        attempt('a small group by sorting', patientsOf(row) < 11, JSON.stringify(row));
      }
    }
  }, 300_000);

  it('percentiles: patients in several releases, hospitals and replaced months decide none alone', async () => {
    const truthRows = await ask(oracle, {
      dataset: exact,
      select: ['patient', 'code', 'value', 'hospital', 'month'],
    });
    const current = truthRows.rows.filter((row) => typeof row.value === 'number');
    const codes = [...new Set(current.map((row) => String(row.code)))];
    const all = await releasesRepository(testPlatform.catalog.db).locations(exact);
    const every = await sql<{
      id: string;
    }>`select id from releases where dataset_id = ${exact}`.execute(testPlatform.catalog.db);
    const named = every.rows.map((row) => row.id);
    expect(named.length).toBeGreaterThan(all.length);
    const specs = [
      { dataset: exact, groupBy: [{ column: 'code' }] },
      { dataset: exact, groupBy: [{ column: 'code' }, { column: 'hospital' }] },
    ];
    const oracleRows = async (ids: string[]) => {
      const { rows } = await ask(oracle, {
        dataset: exact,
        releases: ids,
        select: ['patient', 'code', 'value', 'hospital'],
      });
      return rows.filter((row) => typeof row.value === 'number');
    };
    const ps = [0.01, 0.05, 0.1, 0.5, 0.9, 0.95, 0.99];
    const namedRows = await oracleRows(named);
    for (const spec of specs) {
      for (const releases of [undefined, named]) {
        const { rows } = await ask(attacker, {
          ...spec,
          ...(releases ? { releases } : {}),
          measures: [{ fn: 'count' }, ...ps.map((p) => ({ fn: 'percentile', column: 'value', p }))],
        });
        for (const row of rows) {
          // The oracle's values of the group, of every release read (the named ones may repeat
          // a replaced month's rows: those count twice, as the engine reads them).
          const groupRows = (releases ? namedRows : current).filter(
            (item) =>
              item.code === row.code &&
              (row.hospital === undefined || item.hospital === row.hospital),
          );
          for (const p of ps) {
            const shown = row[`value_p${Math.round(p * 100)}`];
            if (typeof shown !== 'number') continue;
            const below = new Set(
              groupRows.filter((item) => Number(item.value) <= shown).map((item) => item.patient),
            ).size;
            const above = new Set(
              groupRows.filter((item) => Number(item.value) >= shown).map((item) => item.patient),
            ).size;
            attempt(
              'a percentile decided by fewer than k patients',
              below < 11 || above < 11,
              `${JSON.stringify(row.code)} ${String(row.hospital ?? '')} p${p}: ${below} below, ${above} above${releases ? ' (releases named)' : ''}`,
            );
          }
        }
      }
    }
    expect(codes.length).toBeGreaterThan(0);
  }, 600_000);

  it('an ungrouped mean and sum come back within noise of the truth, end to end', async () => {
    const where = { column: 'code', op: 'eq', value: '8302-2' };
    const truth = await ask(oracle, {
      dataset: noisy,
      where,
      measures: [{ fn: 'mean', column: 'value' }, { fn: 'patients' }],
    });
    const mean = Number(truth.rows[0]?.value_mean);
    expect(mean).toBeGreaterThan(50);
    // Noise of about 7,600 (cm) on a sum of 582 values puts one noisy mean some 13 cm off (its
    // Laplace scale): one answer alone strays past 40 cm about one run in twenty. A mean whose
    // noise was spent twice is off by half the truth or more (75 cm) in every phrasing, so the
    // median of five phrasings, each a fresh answer at a fresh cost, tells them apart.
    const means: number[] = [];
    for (let phrasing = 0; phrasing < 5; phrasing += 1) {
      const { rows } = await ask(attacker, {
        dataset: noisy,
        where:
          phrasing === 0
            ? where
            : { and: [where, { column: 'value', op: 'gte', value: -phrasing }] },
        measures: [{ fn: 'mean', column: 'value' }, { fn: 'patients' }],
      });
      means.push(Number(rows[0]?.value_mean));
    }
    const median = [...means].sort((a, b) => a - b)[2]!;
    attempt(
      'an ungrouped mean far from the truth (noise spent twice)',
      Math.abs(median - mean) > 40,
      `noisy ${means.join(', ')}, true ${mean}`,
    );
  }, 300_000);

  it('two new questions run at once cannot spend more than the budget', async () => {
    // A budget of one question: ε 5 of 5 per window.
    await saveDataset(testPlatform, {
      ...contract,
      name: 'review-race',
      title: 'Race',
      privacy: { noise: { ...noise, budget: { epsilon: 5, windowDays: 30 } } },
    });
    const ingested = await ingest(testPlatform, {
      file: synthea('2021-04'),
      dataset: 'review-race',
      month: '2021-04',
    });
    expect(ingested.status).toBe('published');
    const racer = await researcherWithAccess(
      testPlatform,
      'race@example.org',
      'review-race',
      'aggregate',
    );
    const questions = ['sex', 'race', 'ethnicity'].map((column) => ({
      dataset: 'review-race',
      groupBy: [{ column }],
      measures: [{ fn: 'patients' }],
    }));
    // Each is checked against the budget when submitted (nothing spent yet), then all run at once.
    const jobs = [];
    for (const question of questions) {
      jobs.push(await submitQuery(platform, { user: racer, source: 'test' }, question));
    }
    const repository = queryJobsRepository(platform.catalog.db);
    const claimed = await Promise.all(jobs.map((job) => repository.claim('review', job.id)));
    await Promise.all(
      claimed.map((job) =>
        executeQueryJob(platform, job!, 'review', { logger: createLogger('silent') }),
      ),
    );
    const ended = await Promise.all(jobs.map((job) => getQuery(platform, racer, job.id)));
    const answered = ended.filter((job) => job.status === 'succeeded').length;
    attempt(
      'more answers than the budget pays for',
      answered > 1,
      `${answered} of ${questions.length} answered on a budget of one`,
    );
  }, 300_000);

  it('a changed noise policy does not make an old question free at the new ε', async () => {
    const spec = {
      dataset: noisy,
      groupBy: [{ column: 'ethnicity' }],
      measures: [{ fn: 'patients' }],
    };
    const before = await ask(attacker, spec);
    const spentBefore = spentOf(before.job);
    // The steward weakens the policy (ε 5 → 10 per query); the holder asks the old question.
    await saveDataset(
      testPlatform,
      {
        ...contract,
        name: noisy,
        title: 'Noisy',
        privacy: { noise: { ...noise, epsilonPerQuery: 10 } },
      },
      { replace: true },
    );
    const after = await ask(attacker, spec);
    const answer = (rows: Row[]) =>
      JSON.stringify(rows.map((row) => [row.ethnicity, row.patients]).sort());
    const differs = answer(after.rows) !== answer(before.rows);
    attempt(
      'a new answer at a new ε for free',
      differs && spentOf(after.job) === spentBefore,
      `before ${JSON.stringify(before.rows)} (spent ${spentBefore}), after ${JSON.stringify(after.rows)} (spent ${spentOf(after.job)})`,
    );
  }, 300_000);
});
