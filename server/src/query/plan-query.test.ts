import { querySpecSchema, type QuerySpecInput } from '@medlake/shared';
import { describe, expect, it } from 'vitest';
import {
  catalogBounds,
  catalogCodes,
  planQuery,
  type CandidateRelease,
  type PlanOptions,
} from './plan-query.ts';

const releases: CandidateRelease[] = ['h1', 'h2'].flatMap((hospitalId) =>
  ['2024-01', '2024-02', '2024-03'].map((month) => ({
    id: `${hospitalId}-${month}`,
    hospitalId,
    month,
    folder: `lake/d/hospital=${hospitalId}/month=${month}/release=r`,
  })),
);

function reads(where: QuerySpecInput['where'], cohortWhere?: QuerySpecInput['where']) {
  const spec = querySpecSchema.parse({
    dataset: 'lab',
    where,
    ...(cohortWhere ? { cohort: { criteria: [{ where: cohortWhere }] } } : {}),
    measures: [{ fn: 'count' }],
  });
  const plan = planQuery(spec, releases);
  return { main: plan.main.map((r) => r.id), cohort: plan.cohort.map((c) => c.map((r) => r.id)) };
}

describe('planning which releases a query reads', () => {
  it('reads one partition for a one-hospital, one-month query', () => {
    const { main } = reads({
      and: [
        { column: 'hospital', op: 'eq', value: 'h2' },
        { column: 'month', op: 'eq', value: '2024-02' },
        { column: 'code', op: 'eq', value: '8302-2' },
      ],
    });
    expect(main).toEqual(['h2-2024-02']);
  });

  it('reads everything when the filter says nothing about hospitals or months', () => {
    expect(reads({ column: 'code', op: 'eq', value: 'x' }).main).toHaveLength(6);
    expect(reads(undefined).main).toHaveLength(6);
  });

  it('keeps a partition when an or could still be true in it', () => {
    const { main } = reads({
      or: [
        { column: 'hospital', op: 'eq', value: 'h1' },
        { column: 'code', op: 'eq', value: 'x' },
      ],
    });
    expect(main).toHaveLength(6);
  });

  it('prunes through not, sets, ranges and month ranges', () => {
    expect(reads({ not: { column: 'hospital', op: 'eq', value: 'h1' } }).main).toEqual([
      'h2-2024-01',
      'h2-2024-02',
      'h2-2024-03',
    ]);
    expect(reads({ column: 'month', op: 'in', values: ['2024-01', '2024-03'] }).main).toHaveLength(
      4,
    );
    expect(reads({ op: 'months', from: '2024-02', to: '2024-02' }).main).toEqual([
      'h1-2024-02',
      'h2-2024-02',
    ]);
    expect(reads({ column: 'month', op: 'between', min: '2024-02' }).main).toHaveLength(4);
  });

  it('turns "the last N months" into the N latest months there are data for', () => {
    expect(reads({ op: 'last_months', months: 2 }).main).toEqual([
      'h1-2024-02',
      'h1-2024-03',
      'h2-2024-02',
      'h2-2024-03',
    ]);
  });

  it('plans each cohort criterion on its own filter', () => {
    const { main, cohort } = reads(
      { column: 'month', op: 'eq', value: '2024-03' },
      { column: 'hospital', op: 'eq', value: 'h1' },
    );
    expect(main).toEqual(['h1-2024-03', 'h2-2024-03']);
    expect(cohort).toEqual([['h1-2024-01', 'h1-2024-02', 'h1-2024-03']]);
  });
});

describe('the catalog bounds of a query', () => {
  const spec = (input: object) =>
    querySpecSchema.parse({ dataset: 'labs', measures: [{ fn: 'count' }], ...input });

  it('narrows to the hospitals and months every row must come from', () => {
    expect(
      catalogBounds(
        spec({
          where: {
            and: [
              { column: 'hospital', op: 'in', values: ['h1', 'h2'] },
              { column: 'hospital', op: 'eq', value: 'h2' },
              { op: 'months', from: '2024-01', to: '2024-06' },
              { column: 'month', op: 'gte', value: '2024-03' },
            ],
          },
        }),
      ),
    ).toEqual({ hospitals: ['h2'], from: '2024-03', to: '2024-06' });
  });

  it('widens over either side of an or, and over cohort criteria, which read their own months', () => {
    expect(
      catalogBounds(
        spec({
          where: {
            or: [
              { column: 'hospital', op: 'eq', value: 'h1' },
              {
                and: [
                  { column: 'hospital', op: 'eq', value: 'h2' },
                  { column: 'month', op: 'eq', value: '2024-02' },
                ],
              },
            ],
          },
        }),
      ),
    ).toEqual({ hospitals: ['h1', 'h2'], from: undefined, to: undefined });
    expect(
      catalogBounds(
        spec({
          where: { column: 'hospital', op: 'eq', value: 'h1' },
          cohort: { criteria: [{ where: { column: 'code', op: 'eq', value: 'x' } }] },
        }),
      ),
    ).toEqual({ hospitals: undefined, from: undefined, to: undefined });
  });

  it('leaves out nothing for negations and for the latest months, counted over all the data', () => {
    expect(
      catalogBounds(spec({ where: { not: { column: 'hospital', op: 'eq', value: 'h1' } } })),
    ).toEqual({});
    expect(
      catalogBounds(
        spec({
          where: {
            and: [
              { column: 'hospital', op: 'eq', value: 'h1' },
              { op: 'last_months', months: 3 },
            ],
          },
        }),
      ),
    ).toEqual({});
  });
});

describe('planning which files of a release a query on codes reads', () => {
  const options: PlanOptions = { codeColumn: 'code', codeSets: { lipids: ['b', 'c'] } };
  // A clustered release: each file holds a range of codes; the last too many to list.
  const release: CandidateRelease = {
    id: 'r',
    hospitalId: 'h1',
    month: '2024-01',
    folder: 'lake/d/hospital=h1/month=2024-01/release=r',
    files: [
      { file: 'part-0.parquet', codes: ['a', 'b'] },
      { file: 'part-1.parquet', codes: ['b', 'c'] },
      { file: 'part-2.parquet', codes: ['d'] },
      { file: 'part-3.parquet', codes: null },
    ],
  };
  const spec = (where: QuerySpecInput['where'], cohortWhere?: QuerySpecInput['where']) =>
    querySpecSchema.parse({
      dataset: 'lab',
      where,
      ...(cohortWhere ? { cohort: { criteria: [{ where: cohortWhere }] } } : {}),
      measures: [{ fn: 'count' }],
    });
  const filesRead = (where: QuerySpecInput['where']) =>
    planQuery(spec(where), [release], options).main.map((read) => read.readFiles ?? 'all');

  it('reads only the files listing a code, for each way of naming codes', () => {
    const listing = [['part-0.parquet', 'part-1.parquet', 'part-3.parquet']];
    expect(filesRead({ column: 'code', op: 'eq', value: 'b' })).toEqual(listing);
    expect(filesRead({ op: 'code', codes: ['b'] })).toEqual(listing);
    expect(filesRead({ op: 'code_set', name: 'lipids' })).toEqual(listing);
    expect(filesRead({ column: 'code', op: 'in', values: ['d', 'e'] })).toEqual([
      ['part-2.parquet', 'part-3.parquet'],
    ]);
  });

  it('leaves out a release none of whose files can hold the code', () => {
    const withoutUnlisted = { ...release, files: release.files!.slice(0, 3) };
    const plan = planQuery(spec({ op: 'code', codes: ['z'] }), [withoutUnlisted], options);
    expect(plan.main).toEqual([]);
  });

  it('reads a release whole when its filter does not bound the codes', () => {
    expect(
      filesRead({
        or: [
          { column: 'code', op: 'eq', value: 'b' },
          { column: 'sex', op: 'eq', value: 'F' },
        ],
      }),
    ).toEqual(['all']);
    expect(filesRead({ not: { column: 'code', op: 'eq', value: 'a' } })).toEqual(['all']);
  });

  it('asks the catalog for the codes of every filter that bounds them, together', () => {
    expect(
      catalogCodes(
        spec(
          {
            and: [
              { column: 'code', op: 'in', values: ['a', 'b', 'c'] },
              { op: 'code_set', name: 'lipids' },
            ],
          },
          { op: 'code', codes: ['x'] },
        ),
        options,
      ),
    ).toEqual(['b', 'c', 'x']);
    expect(catalogCodes(spec({ column: 'sex', op: 'eq', value: 'F' }), options)).toBeUndefined();
    expect(catalogCodes(spec({ op: 'code', codes: ['a'] }), {})).toBeUndefined();
  });
});
