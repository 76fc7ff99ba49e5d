import { lakeColumns, querySpecSchema, type QuerySpecInput } from '@medlake/shared';
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { duckDbDialect } from '../engines/duckdb/duckdb-dialect.ts';
import { AppError } from '../errors.ts';
import { parseContract } from '../use-cases/manage-datasets.ts';
import { compileQuery } from './compile-query.ts';
import { queryColumns } from './query-columns.ts';

const contract = parseContract(
  JSON.parse(
    readFileSync(new URL('../../config/contracts/lab-results.json', import.meta.url), 'utf8'),
  ),
);
const columns = queryColumns(contract);

function compile(spec: QuerySpecInput) {
  return compileQuery(querySpecSchema.parse(spec), {
    dialect: duckDbDialect,
    columns,
    codeSets: { lipids: ['2093-3', '2571-8'] },
    files: { main: ['/lake/a.parquet'], cohort: [['/lake/a.parquet']] },
  });
}

function problemsOf(spec: QuerySpecInput): Array<{ path: string; message: string }> {
  try {
    compile(spec);
  } catch (error) {
    if (error instanceof AppError) return error.details ?? [];
    throw error;
  }
  throw new Error('the spec compiled');
}

describe('compiling a query spec', () => {
  it('puts every value in a parameter and only contract columns in the SQL', () => {
    const hostile = "x' OR 1=1; DROP TABLE users; --";
    const compiled = compile({
      dataset: 'lab-results',
      where: {
        and: [
          { column: 'sex', op: 'eq', value: hostile },
          { column: 'description', op: 'starts_with', value: '%_' },
          { op: 'code_set', name: 'lipids' },
        ],
      },
      groupBy: [{ column: 'age', bands: [18, 65] }],
      measures: [{ fn: 'count' }, { fn: 'percentile', column: 'value', p: 0.9 }],
    });
    expect(compiled.sql).not.toContain(hostile);
    expect(compiled.sql).not.toContain('DROP');
    expect(compiled.sql).not.toContain('%_');
    expect(compiled.params).toEqual(
      expect.arrayContaining([
        hostile,
        '%_',
        '2093-3',
        '2571-8',
        0.9,
        18,
        65,
        '0-17',
        '18-64',
        '65+',
      ]),
    );
    expect(compiled.sql).toContain('"sex" = $1');
    // With a percentile, the grand total comes apart and leaves it out (issue 22).
    expect(compiled.sql).not.toContain('GROUPING SETS');
    expect(compiled.total?.sql).not.toContain(hostile);
    expect(compiled.total?.sql).not.toContain('quantile_cont');
    expect(compiled.total?.params).toBe(compiled.params);
    expect(compiled.columns.map((column) => column.name)).toEqual([
      'age_band',
      'rows',
      'value_p90',
    ]);
  });

  it('names an unknown column, a wrong value type and a text column given to a mean', () => {
    expect(
      problemsOf({
        dataset: 'lab-results',
        where: {
          and: [
            { column: 'first_name', op: 'eq', value: 'Ann' },
            { column: 'age', op: 'gt', value: 'old' },
          ],
        },
        measures: [{ fn: 'mean', column: 'unit' }],
      }),
    ).toEqual([
      {
        path: 'where.and[0].column',
        message: expect.stringContaining('first_name is not a column'),
      },
      { path: 'where.and[1].value', message: 'age holds numbers; "old" is not one' },
      { path: 'measures[0].column', message: 'unit is not a number; mean needs one' },
    ]);
  });

  it('checks dates, buckets, code sets and result names', () => {
    const paths = problemsOf({
      dataset: 'lab-results',
      where: {
        and: [
          { column: 'collected_at', op: 'gte', value: 'yesterday' },
          { op: 'code_set', name: 'nope' },
        ],
      },
      groupBy: [{ column: 'unit', bucket: 'month' }],
      measures: [{ fn: 'count', as: 'unit_month' }],
      orderBy: [{ by: 'missing' }],
    }).map((problem) => problem.path);
    expect(paths).toEqual([
      'where.and[0].value',
      'where.and[1].name',
      'groupBy[0].bucket',
      'measures[0].as',
      'orderBy[0].by',
    ]);
  });

  it('keeps the names of the service’s own result fields from aliases', () => {
    const problems = problemsOf({
      dataset: 'lab-results',
      groupBy: [{ column: 'sex', as: 'suppressed' }],
      measures: [{ fn: 'count', as: 'suppressed' }, { fn: 'patients' }],
    });
    expect(problems.map((problem) => problem.path)).toEqual(['groupBy[0].as', 'measures[0].as']);
    expect(problems[1]?.message).toContain('suppressed is a name the service keeps for itself');
  });

  it('matches no one on a cohort criterion that reads no release, with no parameter left over', () => {
    // A criterion's releases can all lie outside the grant: it then reads nothing.
    const compiled = compileQuery(
      querySpecSchema.parse({
        dataset: 'lab-results',
        cohort: {
          criteria: [{ where: { column: 'code', op: 'eq', value: '4548-4' }, minRows: 2 }],
        },
        measures: [{ fn: 'patients' }],
      }),
      {
        dialect: duckDbDialect,
        columns,
        codeSets: {},
        files: { main: ['/lake/a.parquet'], cohort: [[]] },
      },
    );
    const placeholders = [...compiled.sql.matchAll(/\$(\d+)/g)].map((match) => Number(match[1]));
    expect(Math.max(0, ...placeholders)).toBe(compiled.params.length);
    expect(compiled.params).not.toContain('4548-4');
    expect(compiled.sql).toContain('FALSE');
  });

  it('reads the partition columns and every lake column of the contract', () => {
    expect([...columns.keys()]).toEqual([
      ...lakeColumns(contract).map((column) => column.name),
      'hospital',
      'month',
    ]);
    expect(columns.get('patient')?.linkage).toBe(true);
    expect(columns.get('encounter')?.linkage).toBe(true);
    expect(columns.get('collected_at')?.primaryDate).toBe(true);
  });
});
