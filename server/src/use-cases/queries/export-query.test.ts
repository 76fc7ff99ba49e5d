import { readFile } from 'node:fs/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestPlatform, type TestPlatform } from '../../../test/helper.ts';
import { fixtureLines, ingest, prepareDataset } from '../../../test/ingest-helpers.ts';
import { readParquet } from '../../../test/parquet.ts';
import { researcherWithAccess, runQuery } from '../../../test/query-helpers.ts';
import { testSparkUrl } from '../../../test/spark.ts';
import type { User } from '../../catalog/users-repository.ts';
import { exportQueryResult } from './export-query.ts';

/**
 * Twelve patients' results of one code (the fixture's first, with its unit). Their mean is
 * 98.6, but summed in binary, in whatever order an engine adds them, and divided, it never
 * comes out 98.6: 98.60000000000001, 98.59999999999998 or 98.60000000000002.
 */
const values = [99, 98.2, 99.5, 97.7, 99.1, 98.1, 98.8, 98.4, 99.1, 98.1, 99.1, 98.1];

const engines: Array<[string, () => Record<string, string>]> = [
  ['DuckDB', () => ({})],
  ['Spark', () => ({ MEDLAKE_ENGINE: 'spark', SPARK_CONNECT_URL: testSparkUrl() })],
];

describe.each(engines)('exports on %s', (_name, engineEnv) => {
  let platform: TestPlatform;
  let researcher: User;
  let code = '';
  let birthYear = 0;

  beforeAll(async () => {
    platform = await createTestPlatform('pglite', engineEnv());
    await prepareDataset(platform, 'synthea-observations');
    const { header, rows } = await fixtureLines('2020-12');
    const template = rows[0]!.split(',');
    code = template[16]!;
    birthYear = Number(template[4]!.slice(0, 4));
    const lines = values.map((value, index) => {
      const cells = [...template];
      const id = String(index + 1).padStart(12, '0');
      cells[0] = `00000000-0000-0000-0000-${id}`; // MRN: one patient each
      cells[1] = `999-00-${String(1000 + index)}`; // SSN
      cells[14] = `10000000-0000-0000-0000-${id}`; // encounter
      cells[18] = String(value);
      return cells.join(',');
    });
    await ingest(platform, { text: [header, ...lines].join('\n'), month: '2020-12' });
    researcher = await researcherWithAccess(
      platform,
      'agg@example.org',
      'synthea-observations',
      'aggregate',
    );
  }, 120_000);

  afterAll(async () => {
    await platform?.dispose();
  });

  it('writes a mean of 98.6 as 98.6 in CSV, not with the binary noise of its sum, and whole numbers without ".0"; Parquet as computed', async () => {
    const sum = values.reduce((total, value) => total + value, 0);
    expect(sum / values.length).not.toBe(98.6);

    const spec = {
      dataset: 'synthea-observations',
      groupBy: [{ column: 'code' }],
      measures: [
        { fn: 'patients' },
        { fn: 'mean', column: 'value' },
        { fn: 'sum', column: 'birth_year' },
      ],
    };
    const { job, rows } = await runQuery(platform, researcher, spec);
    expect(job.status).toBe('succeeded');
    // The stored result holds the engine's double as computed, noise and all.
    expect(rows).toHaveLength(1);
    const [row] = rows as Array<Record<string, unknown>>;
    expect(row).toMatchObject({ code, patients: 12 });
    expect(row!.value_mean).not.toBe(98.6);
    expect(row!.value_mean).toBeCloseTo(98.6, 10);

    await exportQueryResult(platform, { user: researcher, source: 'test' }, job.id, 'csv');
    const csv = await readFile(platform.store.locate(`results/${job.id}/export.csv`), 'utf8');
    expect(csv.trim().split(/\r?\n/)).toEqual([
      'code,patients,value_mean,birth_year_sum,suppressed',
      `${code},12,98.6,${12 * birthYear},false`,
    ]);

    await exportQueryResult(platform, { user: researcher, source: 'test' }, job.id, 'parquet');
    // Parquet holds the double itself, as the pages give it: a program reading both agrees.
    const parquet = await readParquet(platform.store.locate(`results/${job.id}/export.parquet`));
    expect(parquet).toEqual([
      {
        code,
        patients: 12n,
        value_mean: row!.value_mean,
        birth_year_sum: 12 * birthYear,
        suppressed: false,
      },
    ]);
  });

  it('writes a suppressed count as "suppressed" in CSV, as the API shows it, not as a figure', async () => {
    // Four of the twelve patients have a value above 99: fewer than the threshold.
    const spec = {
      dataset: 'synthea-observations',
      where: { column: 'value', op: 'gt', value: 99 },
      measures: [{ fn: 'patients' }, { fn: 'count' }, { fn: 'mean', column: 'value' }],
    };
    const { job, rows } = await runQuery(platform, researcher, spec);
    expect(job.status).toBe('succeeded');
    expect(rows).toEqual([
      { patients: 'suppressed', rows: 'suppressed', value_mean: null, suppressed: true },
    ]);

    await exportQueryResult(platform, { user: researcher, source: 'test' }, job.id, 'csv');
    const csv = await readFile(platform.store.locate(`results/${job.id}/export.csv`), 'utf8');
    expect(csv.trim().split(/\r?\n/)).toEqual([
      'patients,rows,value_mean,suppressed',
      'suppressed,suppressed,,true',
    ]);
  });
});
