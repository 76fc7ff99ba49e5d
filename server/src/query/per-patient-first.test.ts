import { mkdtemp, rm } from 'node:fs/promises';
import { readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { DuckDBInstance, type DuckDBConnection } from '@duckdb/node-api';
import { querySpecSchema, type QuerySpecInput } from '@medlake/shared';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { duckDbDialect } from '../engines/duckdb/duckdb-dialect.ts';
import { parseContract } from '../use-cases/manage-datasets.ts';
import { compileQuery, compileWithheldPatients } from './compile-query.ts';
import { queryColumns } from './query-columns.ts';
import { aggregateStatement } from './run-aggregate.ts';

// Aggregates finished from per-patient partials (per-patient-first.ts) against the same
// figures written directly over the rows, in DuckDB, on rows made to catch a wrong combination:
// a patient in two groups (the total's patients are fewer than the groups' sum), several rows
// of one patient in one group, values that are NULL, and a group whose values all are.
const contract = parseContract(
  JSON.parse(
    readFileSync(new URL('../../config/contracts/lab-results.json', import.meta.url), 'utf8'),
  ),
);
const columns = queryColumns(contract);

const rows = [
  // patient, code, sex, value, age, collected_at
  ['p1', 'A', 'F', 1.5, 17, '2024-01-05 08:00:00'],
  ['p1', 'A', 'F', 2.25, 18, '2024-02-11 09:30:00'],
  ['p1', 'B', 'F', 10, 18, '2024-02-11 09:30:00'],
  ['p2', 'A', 'M', null, 64, '2024-01-20 10:00:00'],
  ['p2', 'A', 'M', 4, 65, '2024-01-27 10:00:00'],
  ['p3', 'B', 'F', 7.75, 90, '2025-03-02 11:00:00'],
  ['p3', 'C', 'F', null, null, '2024-02-29 23:59:59'],
  ['p4', 'C', 'M', null, 0, '2024-03-01 00:00:00'],
] as const;

let directory: string;
let file: string;
let instance: DuckDBInstance;
let connection: DuckDBConnection;

beforeAll(async () => {
  directory = await mkdtemp(path.join(tmpdir(), 'medlake-per-patient-'));
  file = path.join(directory, 'rows.parquet');
  instance = await DuckDBInstance.create(':memory:');
  connection = await instance.connect();
  const values = rows
    .map(
      ([patient, code, sex, value, age, at]) =>
        `('${patient}', '${code}', '${sex}', ${value ?? 'NULL'}, ${age ?? 'NULL'}, TIMESTAMP '${at}')`,
    )
    .join(', ');
  await connection.run(
    `COPY (SELECT patient, code, sex, CAST(value AS DOUBLE) AS value, CAST(age AS INTEGER) AS age, collected_at FROM (VALUES ${values}) AS v(patient, code, sex, value, age, collected_at)) TO '${file}' (FORMAT parquet)`,
  );
});

afterAll(async () => {
  connection?.closeSync();
  instance?.closeSync();
  await rm(directory, { recursive: true, force: true });
});

/** The compiled aggregate's rows (groups and total, less the total flag) as sorted text. */
async function medlake(spec: QuerySpecInput): Promise<{ sql: string; rows: string[] }> {
  const compiled = compileQuery(querySpecSchema.parse(spec), {
    dialect: duckDbDialect,
    columns,
    codeSets: {},
    files: { main: [file], cohort: [] },
  });
  const statement = aggregateStatement(compiled);
  const reader = await connection.runAndReadAll(statement.sql, statement.params as never);
  return { sql: statement.sql, rows: asText(reader.getRowsJson().map((row) => row.slice(0, -1))) };
}

/** The same figures written directly over the rows (ROWS: the file). */
async function direct(sql: string): Promise<string[]> {
  const reader = await connection.runAndReadAll(sql.replaceAll('ROWS', `'${file}'`));
  return asText(reader.getRowsJson());
}

/** Rows as text, numbers to 12 significant digits (partial sums add in another order). */
function asText(rows: unknown[][]): string[] {
  return rows
    .map((row) =>
      row
        .map((value) => (typeof value === 'number' ? Number(value.toPrecision(12)) : String(value)))
        .join('|'),
    )
    .sort();
}

const measureSpecs = (['count', 'patients', 'mean', 'sum', 'min', 'max'] as const).map((fn) =>
  fn === 'count' || fn === 'patients' ? { fn } : { fn, column: 'value' },
);
// The measures, then the hidden rows and patients disclosure control counts.
const figures = `count(*), count(DISTINCT patient), avg(value), sum(value), min(value), max(value), count(*), count(DISTINCT patient)`;

describe('aggregates finished from per-patient partials', () => {
  it('give each group’s and the grand total’s figures as the rows do', async () => {
    const { sql, rows: answer } = await medlake({
      dataset: 'lab-results',
      groupBy: [{ column: 'code' }],
      measures: measureSpecs,
    });
    // The groups count their patients as rows of the partials, not with COUNT(DISTINCT).
    expect(sql).toContain('GROUP BY __g0, "patient"');
    expect(answer).toEqual(
      await direct(
        `SELECT code, ${figures} FROM ROWS GROUP BY code UNION ALL SELECT NULL, ${figures} FROM ROWS`,
      ),
    );
    // The rows were made so that a total summed from the groups' patients (6) would be wrong,
    // and so that a group with no value has neither mean nor sum.
    expect(answer).toContain('null|8|4|5.1|25.5|1.5|10|8|4');
    expect(answer).toContain('C|2|2|null|null|null|null|2|2');
  });

  it('are not used for a grouping by three columns, whose partials outgrow memory on a large lake', async () => {
    const { sql, rows: answer } = await medlake({
      dataset: 'lab-results',
      groupBy: [{ column: 'code' }, { column: 'sex' }, { column: 'age', bands: [18] }],
      measures: measureSpecs,
    });
    expect(sql).not.toContain('"patient", count(*) AS __r');
    expect(sql).toContain('count(DISTINCT "patient")');
    const band = `CASE WHEN age < 18 THEN '0-17' WHEN age >= 18 THEN '18+' END`;
    expect(answer).toEqual(
      await direct(
        `SELECT code, sex, ${band}, ${figures} FROM ROWS GROUP BY ALL UNION ALL SELECT NULL, NULL, NULL, ${figures} FROM ROWS`,
      ),
    );
    expect(answer).toContain('null|null|null|8|4|5.1|25.5|1.5|10|8|4');
    // p1's two rows of code A fall in two bands: a patient in two groups.
    expect(answer).toContain('A|F|0-17|1|1|1.5|1.5|1.5|1.5|1|1');
    expect(answer).toContain('A|F|18+|1|1|2.25|2.25|2.25|2.25|1|1');
  });

  it('finish a grouping by two columns from partials too', async () => {
    const { sql, rows: answer } = await medlake({
      dataset: 'lab-results',
      groupBy: [{ column: 'code' }, { column: 'sex' }],
      measures: measureSpecs,
    });
    expect(sql).toContain('GROUP BY __g0, __g1, "patient"');
    expect(answer).toEqual(
      await direct(
        `SELECT code, sex, ${figures} FROM ROWS GROUP BY code, sex UNION ALL SELECT NULL, NULL, ${figures} FROM ROWS`,
      ),
    );
    expect(answer).toContain('C|F|1|1|null|null|null|null|1|1');
  });

  it('are not used by a month or finer date bucket, which leaves about one partial per row', async () => {
    const { sql, rows: answer } = await medlake({
      dataset: 'lab-results',
      groupBy: [{ column: 'code' }, { column: 'collected_at', bucket: 'month' }],
      measures: measureSpecs,
    });
    expect(sql).not.toContain('"patient", count(*) AS __r');
    expect(sql).toContain('count(DISTINCT "patient")');
    const month = `CAST(date_trunc('month', collected_at) AS DATE)`;
    expect(answer).toEqual(
      await direct(
        `SELECT code, ${month}, ${figures} FROM ROWS GROUP BY ALL UNION ALL SELECT NULL, NULL, ${figures} FROM ROWS`,
      ),
    );
    // p1's two rows of code A fall in two months, p2's two in one: three rows of two patients.
    expect(answer).toContain('A|2024-01-01|3|2|2.75|5.5|1.5|4|3|2');
    expect(answer).toContain('A|2024-02-01|1|1|2.25|2.25|2.25|2.25|1|1');
    expect(answer).toContain('null|null|8|4|5.1|25.5|1.5|10|8|4');
  });

  it('still finish a grouping by code and year from partials', async () => {
    const { sql, rows: answer } = await medlake({
      dataset: 'lab-results',
      groupBy: [{ column: 'code' }, { column: 'collected_at', bucket: 'year' }],
      measures: measureSpecs,
    });
    expect(sql).toContain('GROUP BY __g0, __g1, "patient"');
    const year = `CAST(date_trunc('year', collected_at) AS DATE)`;
    expect(answer).toEqual(
      await direct(
        `SELECT code, ${year}, ${figures} FROM ROWS GROUP BY ALL UNION ALL SELECT NULL, NULL, ${figures} FROM ROWS`,
      ),
    );
    expect(answer).toContain('B|2025-01-01|1|1|7.75|7.75|7.75|7.75|1|1');
  });

  it('group age bands by their number and show their labels; an unknown age has no band', async () => {
    const { rows: answer } = await medlake({
      dataset: 'lab-results',
      groupBy: [{ column: 'age', bands: [65, 18] }],
      measures: [{ fn: 'count' }, { fn: 'patients' }],
    });
    const band = `CASE WHEN age < 18 THEN '0-17' WHEN age < 65 THEN '18-64' WHEN age >= 65 THEN '65+' END`;
    const counts = `count(*), count(DISTINCT patient), count(*), count(DISTINCT patient)`;
    expect(answer).toEqual(
      await direct(
        `SELECT ${band}, ${counts} FROM ROWS GROUP BY 1 UNION ALL SELECT NULL, ${counts} FROM ROWS`,
      ),
    );
    expect(answer).toEqual(
      expect.arrayContaining(['0-17|2|2|2|2', '18-64|3|2|3|2', '65+|2|2|2|2', 'null|1|1|1|1']),
    );
  });

  it('leave the band labels in the published total and the withheld patients, which run alone', async () => {
    // A statement that left out a label's placeholder could not be run with its parameters.
    const spec = querySpecSchema.parse({
      dataset: 'lab-results',
      groupBy: [{ column: 'age', bands: [18, 65] }],
      measures: [{ fn: 'count' }, { fn: 'patients' }],
    });
    const context = {
      dialect: duckDbDialect,
      columns,
      codeSets: {},
      files: { main: [file], cohort: [] },
      minGroupPatients: 2,
    };
    const run = async (statement: { sql: string; params: unknown[] }) =>
      asText(
        (await connection.runAndReadAll(statement.sql, statement.params as never)).getRowsJson(),
      );
    const published = compileQuery(spec, context).publishedTotal;
    if (!published) throw new Error('no published total');
    // Every group but the unknown age's (one patient): 7 rows of 4 patients.
    expect(await run(published)).toEqual(['null|7|4|7|4|1']);
    expect(await run(compileWithheldPatients(spec, context, []))).toEqual(['1']);
    expect(await run(compileWithheldPatients(spec, context, [0]))).toEqual(['null|1']);
  });

  it('give a count of 0 and no mean when no row matches', async () => {
    const { rows: answer } = await medlake({
      dataset: 'lab-results',
      where: { column: 'code', op: 'eq', value: 'none' },
      groupBy: [{ column: 'code' }],
      measures: measureSpecs,
    });
    // No group, and the grand total's row.
    expect(answer).toEqual(['null|0|0|null|null|null|null|0|0']);
  });

  it('are not used where a measure needs every row: a deviation is computed from the rows', async () => {
    const { sql, rows: answer } = await medlake({
      dataset: 'lab-results',
      groupBy: [{ column: 'code' }],
      measures: [{ fn: 'count' }, { fn: 'stddev', column: 'value' }],
    });
    expect(sql).not.toContain('"patient", count(*) AS __r');
    const both = `count(*), stddev_samp(value), count(*), count(DISTINCT patient)`;
    expect(answer).toEqual(
      await direct(
        `SELECT code, ${both} FROM ROWS GROUP BY code UNION ALL SELECT NULL, ${both} FROM ROWS`,
      ),
    );
  });
});

describe('several percentiles of one column', () => {
  it('are one aggregate per group, with the figures of one quantile each, and none in the total', async () => {
    const spec = querySpecSchema.parse({
      dataset: 'lab-results',
      groupBy: [{ column: 'code' }],
      measures: [
        { fn: 'percentile', column: 'value', p: 0.9 },
        { fn: 'count' },
        { fn: 'percentile', column: 'value', p: 0.25 },
        { fn: 'percentile', column: 'age', p: 0.5 },
      ],
    });
    const compiled = compileQuery(spec, {
      dialect: duckDbDialect,
      columns,
      codeSets: {},
      files: { main: [file], cohort: [] },
      minGroupPatients: 2,
      mostRowsPerPatient: 3,
    });
    // value's two percentiles share one list of fractions; age's one stays alone.
    expect(compiled.sql).toMatch(/quantile_cont\("value", \[\$\d+, \$\d+\]\)\[1\]/);
    expect(compiled.sql).toMatch(/quantile_cont\("value", \[\$\d+, \$\d+\]\)\[2\]/);
    expect(compiled.sql).toMatch(/quantile_cont\("age", \$\d+\)/);
    const statement = aggregateStatement(compiled);
    const reader = await connection.runAndReadAll(statement.sql, statement.params as never);
    const answer = reader.getRowObjectsJson();
    const expected = await connection.runAndReadAll(
      `SELECT code, quantile_cont(value, 0.9) AS p90, count(*) AS n, quantile_cont(value, 0.25) AS p25, quantile_cont(age, 0.5) AS age50, count(value) AS "values", count(DISTINCT patient) AS patients FROM '${file}' GROUP BY code`,
    );
    const groups = answer.filter((row) => Number(row.__total) === 0);
    expect(
      groups
        .map((row) =>
          [
            row.code,
            row.value_p90,
            row.rows,
            row.value_p25,
            row.age_p50,
            row.__pn0,
            row.__pn2,
            row.__patients,
          ].join('|'),
        )
        .sort(),
    ).toEqual(
      expected
        .getRowObjectsJson()
        .map((row) =>
          [row.code, row.p90, row.n, row.p25, row.age50, row.values, row.values, row.patients].join(
            '|',
          ),
        )
        .sort(),
    );
    // Code C's values are all NULL: no percentile, and none counted.
    expect(groups.find((row) => row.code === 'C')).toMatchObject({
      value_p90: null,
      value_p25: null,
      __pn0: '0',
    });
    // The total has no percentile, so it counts no values for judging one.
    const [total] = answer.filter((row) => Number(row.__total) === 1);
    expect(total).toMatchObject({ value_p90: null, value_p25: null, __pn0: null, __pn2: null });
    expect(total?.__patients).toBe('4');
  });
});
