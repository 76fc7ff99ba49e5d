import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { DuckDBInstance, type DuckDBConnection } from '@duckdb/node-api';
import type { QuerySpecInput } from '@medlake/shared';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestPlatform, type TestPlatform, testActor } from '../../test/helper.ts';
import { ingest, prepareDataset, synthea } from '../../test/ingest-helpers.ts';
import { runQuery } from '../../test/query-helpers.ts';
import { hospitalsRepository } from '../catalog/hospitals-repository.ts';
import type { User } from '../catalog/users-repository.ts';
import { generateExports } from '../demo/generate-exports.ts';
import { addHospital } from '../use-cases/manage-datasets.ts';
import { addUser, grantDatasetAccess } from '../use-cases/manage-access.ts';
import { createSparkEngine } from '../engines/spark/spark-engine.ts';
import type { QueryEngine } from '../engines/types.ts';
import type { Platform } from '../platform.ts';
import type { StorageKind } from '../storage/object-store.ts';
import { testSparkUrl } from '../../test/spark.ts';

/**
 * The golden suite: each query runs through the whole service (spec → plan → SQL → engine →
 * stored Parquet → pages) and must give exactly what a hand-written SQL query over the source
 * CSV files gives. The expected side never sees the lake or the compiler: it reads the exports
 * as the hospitals sent them and applies the contract's de-identification by hand (dates to the
 * month, ages capped at 90, text results not numbers).
 */

type GoldenCase = {
  name: string;
  spec: QuerySpecInput;
  /** SQL over the views `syn` (Synthea observations) and `lab` (generated lab results). */
  expected: string;
  /** Compare in this order instead of as sets (for sorted and limited results). */
  ordered?: boolean;
};

// What the synthea-observations contract keeps, derived by hand from the raw export.
const synView = (file: string, hospital: string, month: string) => `
  SELECT '${hospital}' AS hospital, '${month}' AS month, MRN AS patient_ref, GENDER AS sex, RACE AS race,
    ETHNICITY AS ethnicity, STATE AS state, left(ZIP, 3) AS zip, CATEGORY AS category, CODE AS code,
    DESCRIPTION AS description, UNITS AS unit, TYPE AS value_type,
    TRY_CAST(VALUE AS DOUBLE) AS value,
    CAST(date_trunc('month', CAST(replace("DATE", 'Z', '') AS TIMESTAMP)) AS DATE) AS observed_at,
    least(date_sub('year', CAST(BIRTHDATE AS DATE), CAST(replace("DATE", 'Z', '') AS TIMESTAMP)), 90) AS age
  FROM read_csv('${file}', all_varchar = true)`;

// Values in the conventional US unit, as the lake keeps them (issue 24): the SI units the
// generator's even hospitals send, converted by the textbook factors (molar masses of glucose,
// creatinine and cholesterol; the IFCC–NGSP master equation for HbA1c).
const conventionalValue = (value: string) => `CASE
    WHEN loinc_code = '2345-7' AND result_unit = 'mmol/L' THEN ${value} * 18.0156
    WHEN loinc_code = '2160-0' AND result_unit = 'umol/L' THEN ${value} * 0.011312
    WHEN loinc_code = '2093-3' AND result_unit = 'mmol/L' THEN ${value} * 38.6654
    WHEN loinc_code = '4548-4' AND result_unit = 'mmol/mol' THEN ${value} * 0.09148 + 2.152
    ELSE ${value} END`;

const labView = (file: string, hospital: string, month: string) => `
  SELECT '${hospital}' AS hospital, '${month}' AS month, patient_mrn AS patient_ref, sex, race,
    loinc_code AS code, test_name AS description, test_category AS category, result_unit AS unit,
    ${conventionalValue('TRY_CAST(result_value AS DOUBLE)')} AS value,
    least(date_sub('year', CAST(birth_date AS DATE), CAST(replace(collected_at, 'Z', '') AS TIMESTAMP)), 90) AS age
  FROM read_csv('${file}', all_varchar = true)`;

const cases: GoldenCase[] = [
  {
    name: 'rows and patients over everything',
    spec: { dataset: 'synthea-observations', measures: [{ fn: 'count' }, { fn: 'patients' }] },
    expected: `SELECT count(*) AS rows, count(DISTINCT hospital || patient_ref) AS patients FROM syn`,
  },
  {
    name: 'rows and patients per code',
    spec: {
      dataset: 'synthea-observations',
      groupBy: [{ column: 'code' }],
      measures: [{ fn: 'count' }, { fn: 'patients' }],
    },
    expected: `SELECT code, count(*) AS rows, count(DISTINCT hospital || patient_ref) AS patients FROM syn GROUP BY code`,
  },
  {
    name: 'mean value per sex',
    spec: {
      dataset: 'synthea-observations',
      groupBy: [{ column: 'sex' }],
      measures: [{ fn: 'mean', column: 'value' }],
    },
    expected: `SELECT sex, avg(value) AS value_mean FROM syn GROUP BY sex`,
  },
  {
    name: 'min, max, mean and standard deviation of body height',
    spec: {
      dataset: 'synthea-observations',
      where: { column: 'code', op: 'eq', value: '8302-2' },
      measures: [
        { fn: 'min', column: 'value' },
        { fn: 'max', column: 'value' },
        { fn: 'mean', column: 'value' },
        { fn: 'stddev', column: 'value' },
      ],
    },
    expected: `SELECT min(value) AS value_min, max(value) AS value_max, avg(value) AS value_mean, stddev_samp(value) AS value_stddev FROM syn WHERE code = '8302-2'`,
  },
  {
    name: 'a list of codes',
    spec: {
      dataset: 'synthea-observations',
      where: { op: 'code', codes: ['8480-6', '8462-4', '718-7'] },
      groupBy: [{ column: 'code' }],
      measures: [{ fn: 'count' }],
    },
    expected: `SELECT code, count(*) AS rows FROM syn WHERE code IN ('8480-6', '8462-4', '718-7') GROUP BY code`,
  },
  {
    name: 'a named code set',
    spec: {
      dataset: 'synthea-observations',
      where: { op: 'code_set', name: 'body-measurements' },
      groupBy: [{ column: 'code' }],
      measures: [{ fn: 'count' }, { fn: 'mean', column: 'value' }],
    },
    expected: `SELECT code, count(*) AS rows, avg(value) AS value_mean FROM syn WHERE code IN ('8302-2', '29463-7', '39156-5') GROUP BY code`,
  },
  {
    name: 'one hospital',
    spec: {
      dataset: 'synthea-observations',
      where: { column: 'hospital', op: 'eq', value: 'north' },
      measures: [{ fn: 'count' }, { fn: 'patients' }],
    },
    expected: `SELECT count(*) AS rows, count(DISTINCT patient_ref) AS patients FROM syn WHERE hospital = 'north'`,
  },
  {
    name: 'a range of upload months, per hospital and month',
    spec: {
      dataset: 'synthea-observations',
      where: { op: 'months', from: '2021-01' },
      groupBy: [{ column: 'hospital' }, { column: 'month' }],
      measures: [{ fn: 'count' }],
    },
    expected: `SELECT hospital, month, count(*) AS rows FROM syn WHERE month >= '2021-01' GROUP BY ALL`,
  },
  {
    name: 'the latest upload month',
    spec: {
      dataset: 'synthea-observations',
      where: { op: 'last_months', months: 1 },
      measures: [{ fn: 'count' }],
    },
    expected: `SELECT count(*) AS rows FROM syn WHERE month = (SELECT max(month) FROM syn)`,
  },
  {
    name: 'an absolute date range on the event date',
    spec: {
      dataset: 'synthea-observations',
      where: { op: 'date_range', from: '2019-01-01', to: '2020-06-30' },
      measures: [{ fn: 'count' }, { fn: 'patients' }],
    },
    expected: `SELECT count(*) AS rows, count(DISTINCT hospital || patient_ref) AS patients FROM syn WHERE observed_at BETWEEN DATE '2019-01-01' AND DATE '2020-06-30'`,
  },
  {
    name: 'rows per year since 2010',
    spec: {
      dataset: 'synthea-observations',
      where: { op: 'date_range', from: '2010-01-01' },
      groupBy: [{ column: 'observed_at', bucket: 'year' }],
      measures: [{ fn: 'count' }],
    },
    expected: `SELECT CAST(date_trunc('year', observed_at) AS DATE) AS observed_at_year, count(*) AS rows FROM syn WHERE observed_at >= DATE '2010-01-01' GROUP BY 1`,
  },
  {
    name: 'rows per quarter of one code',
    spec: {
      dataset: 'synthea-observations',
      where: { column: 'code', op: 'eq', value: '29463-7' },
      groupBy: [{ column: 'observed_at', bucket: 'quarter', as: 'quarter' }],
      measures: [{ fn: 'count' }],
    },
    expected: `SELECT CAST(date_trunc('quarter', observed_at) AS DATE) AS quarter, count(*) AS rows FROM syn WHERE code = '29463-7' GROUP BY 1`,
  },
  {
    name: 'mean per month',
    spec: {
      dataset: 'synthea-observations',
      where: { column: 'code', op: 'eq', value: '8867-4' },
      groupBy: [{ column: 'observed_at', bucket: 'month', as: 'month_of_event' }],
      measures: [{ fn: 'mean', column: 'value' }],
    },
    expected: `SELECT observed_at AS month_of_event, avg(value) AS value_mean FROM syn WHERE code = '8867-4' GROUP BY 1`,
  },
  {
    name: 'rows per week',
    spec: {
      dataset: 'synthea-observations',
      where: { op: 'date_range', from: '2020-01-01' },
      groupBy: [{ column: 'observed_at', bucket: 'week', as: 'week' }],
      measures: [{ fn: 'count' }],
    },
    expected: `SELECT CAST(date_trunc('week', observed_at) AS DATE) AS week, count(*) AS rows FROM syn WHERE observed_at >= DATE '2020-01-01' GROUP BY 1`,
  },
  {
    name: 'patients per age band',
    spec: {
      dataset: 'synthea-observations',
      groupBy: [{ column: 'age', bands: [18, 45, 65] }],
      measures: [{ fn: 'patients' }],
    },
    expected: `SELECT CASE WHEN age < 18 THEN '0-17' WHEN age < 45 THEN '18-44' WHEN age < 65 THEN '45-64' ELSE '65+' END AS age_band,
      count(DISTINCT hospital || patient_ref) AS patients FROM syn GROUP BY 1`,
  },
  {
    name: 'body weight in bins of 10 kg',
    spec: {
      dataset: 'synthea-observations',
      where: { column: 'code', op: 'eq', value: '29463-7' },
      groupBy: [{ column: 'value', binWidth: 10 }],
      measures: [{ fn: 'count' }],
    },
    expected: `SELECT floor(value / 10) * 10 AS value_bin, count(*) AS rows FROM syn WHERE code = '29463-7' GROUP BY 1`,
  },
  {
    name: 'median and 90th percentile of body height per sex',
    spec: {
      dataset: 'synthea-observations',
      where: { column: 'code', op: 'eq', value: '8302-2' },
      groupBy: [{ column: 'sex' }],
      measures: [
        { fn: 'percentile', column: 'value', p: 0.5 },
        { fn: 'percentile', column: 'value', p: 0.9 },
      ],
    },
    expected: `SELECT sex, quantile_cont(value, 0.5) AS value_p50, quantile_cont(value, 0.9) AS value_p90 FROM syn WHERE code = '8302-2' GROUP BY sex`,
  },
  {
    name: 'a histogram of systolic blood pressure',
    spec: {
      dataset: 'synthea-observations',
      where: { column: 'code', op: 'eq', value: '8480-6' },
      measures: [{ fn: 'histogram', column: 'value', binWidth: 20 }],
    },
    expected: `SELECT list({'bin': bin, 'count': n} ORDER BY bin) AS value_histogram FROM (
      SELECT floor(value / 20) * 20 AS bin, count(*) AS n FROM syn WHERE code = '8480-6' GROUP BY 1)`,
  },
  {
    name: 'a sum per hospital',
    spec: {
      dataset: 'synthea-observations',
      where: { column: 'code', op: 'eq', value: '72514-3' },
      groupBy: [{ column: 'hospital' }],
      measures: [{ fn: 'sum', column: 'value' }],
    },
    expected: `SELECT hospital, sum(value) AS value_sum FROM syn WHERE code = '72514-3' GROUP BY hospital`,
  },
  {
    name: 'a set of values',
    spec: {
      dataset: 'synthea-observations',
      where: { column: 'race', op: 'in', values: ['white', 'black'] },
      groupBy: [{ column: 'race' }],
      measures: [{ fn: 'patients' }],
    },
    expected: `SELECT race, count(DISTINCT hospital || patient_ref) AS patients FROM syn WHERE race IN ('white', 'black') GROUP BY race`,
  },
  {
    name: 'values outside a set',
    spec: {
      dataset: 'synthea-observations',
      where: { column: 'race', op: 'not_in', values: ['white'] },
      groupBy: [{ column: 'race' }, { column: 'sex' }],
      measures: [{ fn: 'count' }],
    },
    expected: `SELECT race, sex, count(*) AS rows FROM syn WHERE race <> 'white' GROUP BY ALL`,
  },
  {
    name: 'an age range',
    spec: {
      dataset: 'synthea-observations',
      where: { column: 'age', op: 'between', min: 30, max: 50 },
      measures: [{ fn: 'count' }, { fn: 'patients' }],
    },
    expected: `SELECT count(*) AS rows, count(DISTINCT hospital || patient_ref) AS patients FROM syn WHERE age BETWEEN 30 AND 50`,
  },
  {
    name: 'results that are not numbers',
    spec: {
      dataset: 'synthea-observations',
      where: { column: 'value', op: 'is_null' },
      groupBy: [{ column: 'category' }],
      measures: [{ fn: 'count' }],
    },
    expected: `SELECT category, count(*) AS rows FROM syn WHERE value IS NULL GROUP BY category`,
  },
  {
    name: 'results that are numbers',
    spec: {
      dataset: 'synthea-observations',
      where: { column: 'value', op: 'not_null' },
      groupBy: [{ column: 'value_type' }],
      measures: [{ fn: 'count' }],
    },
    expected: `SELECT value_type, count(*) AS rows FROM syn WHERE value IS NOT NULL GROUP BY value_type`,
  },
  {
    name: 'a text prefix',
    spec: {
      dataset: 'synthea-observations',
      where: { column: 'description', op: 'starts_with', value: 'Body' },
      groupBy: [{ column: 'description' }],
      measures: [{ fn: 'count' }],
    },
    expected: `SELECT description, count(*) AS rows FROM syn WHERE starts_with(description, 'Body') GROUP BY description`,
  },
  {
    name: 'either of two conditions',
    spec: {
      dataset: 'synthea-observations',
      where: {
        or: [
          { column: 'sex', op: 'eq', value: 'F' },
          { column: 'age', op: 'gt', value: 80 },
        ],
      },
      measures: [{ fn: 'count' }],
    },
    expected: `SELECT count(*) AS rows FROM syn WHERE sex = 'F' OR age > 80`,
  },
  {
    name: 'a negated condition',
    spec: {
      dataset: 'synthea-observations',
      where: { not: { column: 'category', op: 'eq', value: 'laboratory' } },
      groupBy: [{ column: 'category' }],
      measures: [{ fn: 'count' }],
    },
    expected: `SELECT category, count(*) AS rows FROM syn WHERE NOT (category = 'laboratory') GROUP BY category`,
  },
  {
    name: 'nested and, or and not',
    spec: {
      dataset: 'synthea-observations',
      where: {
        and: [
          { op: 'code', codes: ['8480-6', '8462-4'] },
          {
            or: [
              { column: 'sex', op: 'eq', value: 'M' },
              { not: { column: 'age', op: 'lt', value: 60 } },
            ],
          },
        ],
      },
      groupBy: [{ column: 'code' }],
      measures: [{ fn: 'mean', column: 'value' }, { fn: 'count' }],
    },
    expected: `SELECT code, avg(value) AS value_mean, count(*) AS rows FROM syn
      WHERE code IN ('8480-6', '8462-4') AND (sex = 'M' OR NOT (age < 60)) GROUP BY code`,
  },
  {
    name: 'a cohort: other measurements of patients with high blood pressure',
    spec: {
      dataset: 'synthea-observations',
      where: { column: 'code', op: 'eq', value: '29463-7' },
      cohort: {
        criteria: [
          {
            where: {
              and: [
                { column: 'code', op: 'eq', value: '8480-6' },
                { column: 'value', op: 'gte', value: 140 },
              ],
            },
          },
        ],
      },
      measures: [{ fn: 'count' }, { fn: 'patients' }, { fn: 'mean', column: 'value' }],
    },
    expected: `SELECT count(*) AS rows, count(DISTINCT hospital || patient_ref) AS patients, avg(value) AS value_mean FROM syn
      WHERE code = '29463-7' AND hospital || patient_ref IN (
        SELECT hospital || patient_ref FROM syn WHERE code = '8480-6' AND value >= 140)`,
  },
  {
    name: 'a cohort by exclusion',
    spec: {
      dataset: 'synthea-observations',
      cohort: {
        criteria: [{ where: { column: 'code', op: 'eq', value: '70274-6' }, exclude: true }],
      },
      measures: [{ fn: 'patients' }],
    },
    expected: `SELECT count(DISTINCT hospital || patient_ref) AS patients FROM syn
      WHERE hospital || patient_ref NOT IN (SELECT hospital || patient_ref FROM syn WHERE code = '70274-6')`,
  },
  {
    name: 'a cohort within a time window, at least twice',
    spec: {
      dataset: 'synthea-observations',
      cohort: {
        criteria: [
          {
            where: { column: 'code', op: 'eq', value: '39156-5' },
            from: '2015-01-01',
            to: '2018-12-31',
            minRows: 2,
          },
        ],
      },
      groupBy: [{ column: 'sex' }],
      measures: [{ fn: 'patients' }],
    },
    expected: `SELECT sex, count(DISTINCT hospital || patient_ref) AS patients FROM syn
      WHERE hospital || patient_ref IN (
        SELECT hospital || patient_ref FROM syn WHERE code = '39156-5'
          AND observed_at BETWEEN DATE '2015-01-01' AND DATE '2018-12-31'
        GROUP BY 1 HAVING count(*) >= 2)
      GROUP BY sex`,
  },
  {
    name: 'a cohort of either criterion',
    spec: {
      dataset: 'synthea-observations',
      cohort: {
        match: 'any',
        criteria: [
          { where: { column: 'code', op: 'eq', value: '70274-6' } },
          {
            where: {
              and: [
                { column: 'code', op: 'eq', value: '39156-5' },
                { column: 'value', op: 'gt', value: 30 },
              ],
            },
          },
        ],
      },
      measures: [{ fn: 'patients' }, { fn: 'count' }],
    },
    expected: `SELECT count(DISTINCT hospital || patient_ref) AS patients, count(*) AS rows FROM syn
      WHERE hospital || patient_ref IN (SELECT hospital || patient_ref FROM syn WHERE code = '70274-6')
         OR hospital || patient_ref IN (SELECT hospital || patient_ref FROM syn WHERE code = '39156-5' AND value > 30)`,
  },
  {
    name: 'three-digit ZIP areas',
    spec: {
      dataset: 'synthea-observations',
      groupBy: [{ column: 'zip' }],
      measures: [{ fn: 'patients' }],
    },
    expected: `SELECT zip, count(DISTINCT hospital || patient_ref) AS patients FROM syn GROUP BY zip`,
  },
  {
    name: 'sorted by a measure, limited',
    spec: {
      dataset: 'synthea-observations',
      groupBy: [{ column: 'code' }],
      measures: [{ fn: 'count' }],
      orderBy: [
        { by: 'rows', direction: 'desc' },
        { by: 'code', direction: 'asc' },
      ],
      limit: 5,
    },
    expected: `SELECT code, count(*) AS rows FROM syn GROUP BY code ORDER BY rows DESC, code ASC LIMIT 5`,
    ordered: true,
  },
  {
    name: 'rows of one code, sorted and limited',
    spec: {
      dataset: 'synthea-observations',
      select: ['code', 'value', 'unit'],
      where: { column: 'code', op: 'eq', value: '8302-2' },
      orderBy: [{ by: 'value', direction: 'desc' }],
      limit: 7,
    },
    expected: `SELECT code, value, unit FROM syn WHERE code = '8302-2' ORDER BY value DESC LIMIT 7`,
    ordered: true,
  },
  {
    name: 'generated lab results: mean per code and sex',
    spec: {
      dataset: 'lab-results',
      where: { op: 'code_set', name: 'lipid-panel' },
      groupBy: [{ column: 'code' }, { column: 'sex' }],
      measures: [{ fn: 'count' }, { fn: 'patients' }, { fn: 'mean', column: 'value' }],
    },
    expected: `SELECT code, sex, count(*) AS rows, count(DISTINCT hospital || patient_ref) AS patients, avg(value) AS value_mean
      FROM lab WHERE code IN ('2093-3', '2571-8', '2085-9', '18262-6', '13457-7') GROUP BY ALL`,
  },
  {
    name: 'generated lab results: patients per hospital, month and age band',
    spec: {
      dataset: 'lab-results',
      groupBy: [{ column: 'hospital' }, { column: 'month' }, { column: 'age', bands: [40, 70] }],
      measures: [{ fn: 'patients' }],
    },
    expected: `SELECT hospital, month, CASE WHEN age < 40 THEN '0-39' WHEN age < 70 THEN '40-69' ELSE '70+' END AS age_band,
      count(DISTINCT hospital || patient_ref) AS patients FROM lab GROUP BY ALL`,
  },
];

const stores: Array<[string, StorageKind]> = [
  ['local disk', 'local'],
  ['S3', 's3'],
];

describe.each(stores)('query golden suite, lake on %s', (_, storage) => {
  let platform: TestPlatform;
  let researcher: User;
  let expected: DuckDBConnection;
  let expectedInstance: DuckDBInstance;
  let scratch: string;
  let spark: QueryEngine | undefined;

  beforeAll(async () => {
    scratch = await mkdtemp(path.join(tmpdir(), 'medlake-golden-'));
    platform = await createTestPlatform('pglite', {}, { storage });
    await prepareDataset(platform, 'synthea-observations', ['north', 'full']);
    await prepareDataset(platform, 'lab-results', []);
    const syntheaUploads: Array<[string, string, string]> = [
      [synthea('2020-12'), 'north', '2020-12'],
      [synthea('2021-03'), 'north', '2021-03'],
      [synthea('all'), 'full', '2021-06'],
    ];
    for (const [file, hospital, month] of syntheaUploads) {
      const result = await ingest(platform, { file, hospital, month });
      expect(result.status === 'published' && result.rejectedRows).toBe(0);
    }
    const generated = await generateExports({
      hospitals: 2,
      months: 2,
      rows: 3000,
      outDir: scratch,
      firstMonth: '2024-01',
      seed: 7,
    });
    for (const upload of generated) {
      if (!(await hospitalExists(upload.hospital))) {
        await addHospital(platform, testActor, { id: upload.hospital, name: upload.hospital });
      }
      const result = await ingest(platform, {
        file: upload.file,
        dataset: 'lab-results',
        hospital: upload.hospital,
        month: upload.month,
      });
      expect(result.status === 'published' && result.rejectedRows).toBe(0);
    }

    researcher = await addUser(platform, testActor, {
      email: 'row@example.org',
      name: 'Row',
      role: 'researcher',
    });
    for (const datasetId of ['synthea-observations', 'lab-results']) {
      await grantDatasetAccess(platform, testActor, {
        email: 'row@example.org',
        datasetId,
        level: 'row',
      });
    }

    expectedInstance = await DuckDBInstance.create(':memory:');
    expected = await expectedInstance.connect();
    await expected.run(
      `CREATE VIEW syn AS ${syntheaUploads.map(([file, hospital, month]) => synView(file, hospital, month)).join(' UNION ALL ')}`,
    );
    await expected.run(
      `CREATE VIEW lab AS ${generated.map((upload) => labView(upload.file, upload.hospital, upload.month)).join(' UNION ALL ')}`,
    );
  }, 120_000);

  afterAll(async () => {
    await spark?.close();
    expected?.closeSync();
    expectedInstance?.closeSync();
    await platform?.dispose();
    await rm(scratch, { recursive: true, force: true });
  });

  async function hospitalExists(id: string): Promise<boolean> {
    return Boolean(await hospitalsRepository(platform.catalog.db).get(id));
  }

  it('has at least 30 cases', () => {
    expect(cases.length).toBeGreaterThanOrEqual(30);
  });

  it.each(cases)('on DuckDB: $name', async (golden) => {
    await expectGolden(platform, golden);
  });

  // The same specs through the same service, with Spark in DuckDB's place: the results must be
  // the same to the last digit that matters.
  it.each(cases)('on Spark: $name', async (golden) => {
    spark ??= await createSparkEngine({ url: testSparkUrl(), store: platform.store });
    await expectGolden({ ...platform, engine: spark }, golden);
  });

  async function expectGolden(on: Platform, golden: GoldenCase) {
    const { job, rows } = await runQuery(on, researcher, golden.spec);
    expect(job.error).toBeNull();
    expect(job.status).toBe('succeeded');
    const want = (await expected.runAndReadAll(golden.expected)).getRowObjectsJson();
    const columns = job.summary?.columns.map((column) => column.name) ?? [];
    const actual = rows.map((row) => normalize(row, columns));
    const wanted = want.map((row) => normalize(row, columns));
    if (golden.ordered) {
      expect(actual).toEqual(wanted);
    } else {
      expect(sortedRows(actual)).toEqual(sortedRows(wanted));
    }
    expect(actual.length).toBeGreaterThan(0);
  }

  it('gives groups in their order when the spec names none: months in time order', async () => {
    const { job, rows } = await runQuery(platform, researcher, {
      dataset: 'lab-results',
      groupBy: [{ column: 'collected_at', bucket: 'month' }, { column: 'sex' }],
      measures: [{ fn: 'count' }],
    });
    expect(job.status).toBe('succeeded');
    const keys = rows.map((row) => [String(row.collected_at_month), String(row.sex)]);
    expect(new Set(keys.map((key) => key[0])).size).toBeGreaterThan(1);
    const sorted = keys.toSorted(
      (a, b) => a[0]!.localeCompare(b[0]!) || a[1]!.localeCompare(b[1]!),
    );
    expect(keys).toEqual(sorted);
  });

  it('reads an older release by id, and the current one by default', async () => {
    const lines = (await readFile(synthea('2020-12'), 'utf8')).trimEnd().split('\n');
    const shorter = path.join(scratch, 'north-2020-12-v2.csv');
    await writeFile(shorter, `${lines.slice(0, 101).join('\n')}\n`);
    const before = await runQuery(platform, researcher, {
      dataset: 'synthea-observations',
      where: { column: 'hospital', op: 'eq', value: 'north' },
      measures: [{ fn: 'count' }],
    });
    const replaced = await ingest(platform, { file: shorter, hospital: 'north', month: '2020-12' });
    expect(replaced.status).toBe('published');
    const spec = {
      dataset: 'synthea-observations',
      where: { column: 'month', op: 'eq', value: '2020-12' },
      measures: [{ fn: 'count' }],
    } satisfies QuerySpecInput;
    const current = await runQuery(platform, researcher, spec);
    expect(current.rows[0]?.rows).toBe(100);
    // The releases the first query read include the replaced one, which stays readable by id.
    expect(before.job.releaseIds).not.toContain(
      replaced.status === 'published' && replaced.releaseId,
    );
    const old = await runQuery(platform, researcher, {
      ...spec,
      releases: before.job.releaseIds ?? [],
    });
    expect(old.rows[0]?.rows).toBe(1052);
  });
});

/** Numbers as numbers (engines give big integers as text), rounded past float noise. */
function normalize(
  row: Record<string, unknown>,
  columns: readonly string[],
): Record<string, unknown> {
  const result: Record<string, unknown> = {};
  for (const column of columns) result[column] = normalizeValue(row[column]);
  return result;
}

function normalizeValue(value: unknown): unknown {
  if (typeof value === 'string' && /^-?\d+(\.\d+)?(e[+-]?\d+)?$/i.test(value)) {
    return normalizeValue(Number(value));
  }
  if (typeof value === 'number') return Number(value.toPrecision(10));
  if (Array.isArray(value)) return value.map(normalizeValue);
  if (value && typeof value === 'object') {
    return Object.fromEntries(
      Object.entries(value).map(([key, item]) => [key, normalizeValue(item)]),
    );
  }
  return value ?? null;
}

function sortedRows(rows: Array<Record<string, unknown>>): string[] {
  return rows.map((row) => JSON.stringify(row)).sort();
}
