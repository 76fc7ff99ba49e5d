import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { DuckDBInstance, type DuckDBConnection } from '@duckdb/node-api';
import { querySpecSchema, timeBuckets, type Filter, type QuerySpecInput } from '@medlake/shared';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { duckDbDialect } from '../engines/duckdb/duckdb-dialect.ts';
import { privacySecrets } from '../privacy/privacy-secrets.ts';
import { parseContract } from '../use-cases/manage-datasets.ts';
import { compileQuery, type CompileContext } from './compile-query.ts';
import { queryColumns } from './query-columns.ts';

/**
 * A holder's own date shift (compile-query.ts, `#shown`) against its definition: a holder's
 * query over the lake must answer exactly what the same query without a holder answers over a
 * copy of the lake whose dates were moved beforehand by `dateShiftFor`, the platform's own
 * computation in TypeScript. Filters on shifted dates, date ranges of the query and of cohort
 * criteria, time buckets, minimum and maximum dates and row selects all go through the shift,
 * however the compiler arranges to compute it.
 */

const contract = parseContract(
  JSON.parse(
    readFileSync(new URL('../../config/contracts/lab-results.json', import.meta.url), 'utf8'),
  ),
);
const columns = queryColumns(contract);
const secrets = privacySecrets(Buffer.from('holder shift test secret'));
const holder = 'project:alpha';
const patients = Array.from({ length: 40 }, (_, index) => `p_${String(index).padStart(20, '0')}`);
const codes = ['A', 'B', 'C'];

let scratch: string;
let instance: DuckDBInstance;
let connection: DuckDBConnection;
let lakeFile: string;
let shiftedFile: string;

beforeAll(async () => {
  scratch = await mkdtemp(path.join(tmpdir(), 'medlake-holder-shift-'));
  const folder = (name: string) => path.join(scratch, name, 'hospital=h1', 'month=2024-01');
  await mkdir(folder('lake'), { recursive: true });
  await mkdir(folder('shifted'), { recursive: true });
  lakeFile = path.join(folder('lake'), 'part-0.parquet');
  shiftedFile = path.join(folder('shifted'), 'part-0.parquet');
  instance = await DuckDBInstance.create(':memory:');
  connection = await instance.connect();
  // 600 rows over a year and a half, some without a date; every patient has several rows.
  await connection.run(`CREATE TABLE lake AS SELECT
      'p_' || lpad(CAST(i % ${patients.length} AS VARCHAR), 20, '0') AS patient,
      ['A', 'B', 'C'][1 + (i * 7) % 3] AS code,
      CASE WHEN i % 50 = 0 THEN NULL
        ELSE TIMESTAMP '2023-07-01' + to_minutes(CAST((i * 7919) % 800000 AS INTEGER)) END AS collected_at,
      CAST(i % 97 AS DOUBLE) / 4 AS value
    FROM range(600) AS r(i)`);
  await connection.run(`COPY lake TO '${lakeFile}' (FORMAT parquet)`);
  // The holder's shift per patient, as the platform computes it outside any SQL.
  await connection.run('CREATE TABLE shifts (patient VARCHAR, days INTEGER)');
  const values = patients
    .map((patient) => `('${patient}', ${secrets.dateShiftFor(holder, patient)})`)
    .join(', ');
  await connection.run(`INSERT INTO shifts VALUES ${values}`);
  await connection.run(`COPY (SELECT l.patient, l.code, l.collected_at + to_days(s.days) AS collected_at, l.value
      FROM lake AS l JOIN shifts AS s USING (patient)) TO '${shiftedFile}' (FORMAT parquet)`);
}, 60_000);

afterAll(async () => {
  connection?.closeSync();
  instance?.closeSync();
  await rm(scratch, { recursive: true, force: true });
});

/** The spec's answer: sorted rows as text, numbers to 12 significant digits. */
async function answer(spec: QuerySpecInput, context: CompileContext): Promise<string[]> {
  const compiled = compileQuery(querySpecSchema.parse(spec), context);
  const reader = await connection.runAndReadAll(compiled.sql, compiled.params as never);
  return reader
    .getRowsJson()
    .map((row) =>
      JSON.stringify(row, (_key, value: unknown) =>
        typeof value === 'number' ? Number(value.toPrecision(12)) : value,
      ),
    )
    .sort();
}

function contextOver(file: string, holderKey?: string): CompileContext {
  return {
    dialect: duckDbDialect,
    columns,
    codeSets: {},
    files: { main: [file], cohort: [[file], [file]] },
    ...(holderKey ? { holderKey } : {}),
  };
}

const day = fc
  .integer({ min: 0, max: 640 })
  .map((offset) => new Date(Date.UTC(2023, 5, 1) + offset * 86_400_000).toISOString().slice(0, 10));

const onDates: fc.Arbitrary<Filter> = fc.oneof(
  // A date range needs a start, an end or both.
  fc
    .oneof(fc.record({ from: day }), fc.record({ to: day }), fc.record({ from: day, to: day }))
    .map((range) => ({ op: 'date_range' as const, ...range })),
  fc.record({
    column: fc.constant('collected_at'),
    op: fc.constantFrom('gte' as const, 'lt' as const, 'gt' as const, 'lte' as const),
    value: day,
  }),
  fc.record({
    column: fc.constant('collected_at'),
    op: fc.constant('between' as const),
    min: day,
    max: day,
  }),
  fc.constant({ column: 'collected_at', op: 'is_null' as const }),
);

const onCodes: fc.Arbitrary<Filter> = fc
  .subarray(codes, { minLength: 1 })
  .map((values) => ({ column: 'code', op: 'in' as const, values }));

const where: fc.Arbitrary<Filter | undefined> = fc.oneof(
  fc.constant(undefined),
  onDates,
  fc.tuple(onDates, onCodes).map(([dates, codes]) => ({ and: [dates, codes] })),
  onDates.map((dates) => ({ not: dates })),
  fc.tuple(onDates, onCodes).map(([dates, codes]) => ({ or: [dates, codes] })),
);

const criterion = fc.record(
  {
    where: onCodes,
    from: day,
    to: day,
    minRows: fc.integer({ min: 1, max: 3 }),
    exclude: fc.boolean(),
  },
  { requiredKeys: ['where'] },
);

const cohort = fc.option(
  fc.record({
    match: fc.constantFrom('all' as const, 'any' as const),
    criteria: fc.array(criterion, { minLength: 1, maxLength: 2 }),
  }),
  { nil: undefined },
);

const output = fc.oneof(
  fc
    .record({
      groupBy: fc.subarray([
        { column: 'collected_at', bucket: 'month' as const },
        { column: 'code' },
      ]),
      bucket: fc.constantFrom(...timeBuckets),
      extremes: fc.boolean(),
    })
    .map(({ groupBy, bucket, extremes }) => ({
      groupBy: groupBy.map((group) => ('bucket' in group ? { ...group, bucket } : group)),
      measures: [
        { fn: 'count' as const },
        { fn: 'patients' as const },
        ...(extremes
          ? [
              { fn: 'min' as const, column: 'collected_at' },
              { fn: 'max' as const, column: 'collected_at' },
            ]
          : []),
      ],
    })),
  fc.constant<{ select: string[] }>({ select: ['code', 'collected_at', 'value'] }),
);

describe("a holder's own date shift", () => {
  it('answers as the same query over dates moved beforehand by dateShiftFor', async () => {
    const holderKey = secrets.pseudonymKeyFor(holder);
    let nonEmpty = 0;
    await fc.assert(
      fc.asyncProperty(where, cohort, output, async (filter, cohortSpec, shape) => {
        const spec: QuerySpecInput = {
          dataset: 'lab-results',
          ...(filter ? { where: filter } : {}),
          ...(cohortSpec ? { cohort: cohortSpec } : {}),
          ...shape,
        };
        const expected = await answer(spec, contextOver(shiftedFile));
        const actual = await answer(spec, contextOver(lakeFile, holderKey));
        expect(actual).toEqual(expected);
        if (expected.length > 0) nonEmpty += 1;
      }),
      { numRuns: 60 },
    );
    // The property held on answers that had something in them, not only on empty ones.
    expect(nonEmpty).toBeGreaterThan(20);
  }, 120_000);

  it('moves the dates: the lake as it is answers otherwise', async () => {
    const spec: QuerySpecInput = {
      dataset: 'lab-results',
      groupBy: [{ column: 'collected_at', bucket: 'day' }],
      measures: [{ fn: 'count' }],
    };
    const holderKey = secrets.pseudonymKeyFor(holder);
    expect(await answer(spec, contextOver(lakeFile, holderKey))).not.toEqual(
      await answer(spec, contextOver(lakeFile)),
    );
  });
});
