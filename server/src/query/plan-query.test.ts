import { querySpecSchema, type QuerySpecInput } from '@medlake/shared';
import { describe, expect, it } from 'vitest';
import { catalogBounds, planQuery, type CandidateRelease } from './plan-query.ts';

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
