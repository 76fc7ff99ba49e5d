import { querySpecSchema } from '@medlake/shared';
import { describe, expect, it } from 'vitest';
import {
  allowedColumns,
  buildSpec,
  columnsOf,
  emptyForm,
  fieldForPath,
  formOf,
  formProblems,
  newCriterion,
  newFilter,
  newGroup,
  newMeasure,
  sameSpec,
  specOf,
  type BuilderForm,
} from './builder-form.ts';

const columns = columnsOf([
  { name: 'patient', type: 'varchar', treatment: 'replaced by a random pseudonym from the vault' },
  {
    name: 'encounter',
    type: 'varchar',
    treatment: 'replaced by a random pseudonym from the vault',
  },
  { name: 'sex', type: 'varchar', treatment: 'kept' },
  { name: 'age', type: 'smallint', treatment: 'age in whole years at the event' },
  { name: 'observed_at', type: 'date', treatment: 'year and month kept' },
  { name: 'code', type: 'varchar', treatment: 'kept' },
  { name: 'value', type: 'double', treatment: 'kept' },
]);

/** Mean and 90th percentile of one code by month and hospital, for patients with another above 60. */
const researcherForm: BuilderForm = {
  ...emptyForm('synthea-observations'),
  codes: [{ code: '8302-2', label: null }],
  hospitals: ['synthea'],
  monthFrom: '2020-12',
  filters: [
    { ...newFilter('observed_at'), op: 'date_range', min: '2020-01-01' },
    { ...newFilter('sex'), op: 'in', values: ['F'] },
    { ...newFilter('age'), op: 'between', min: '18', max: '' },
  ],
  criteria: [
    { ...newCriterion(), code: { code: '29463-7', label: null }, min: '60' },
    { ...newCriterion(), code: { code: '4548-4', label: null }, exclude: true, minRows: '2' },
  ],
  cohortMatch: 'any',
  groups: [
    { ...newGroup('observed_at'), bucket: 'month' },
    newGroup('hospital'),
    { ...newGroup('age'), split: 'bands', bands: '18, 45, 65' },
  ],
  measures: [
    newMeasure('mean', 'value'),
    { ...newMeasure('percentile', 'value'), percent: '90' },
    { ...newMeasure('histogram', 'value'), binWidth: '5' },
  ],
  orderBy: 'value_mean',
  direction: 'desc',
  limit: '100',
};

describe('the query builder form', () => {
  it('says several groups, measures, filters and cohort criteria, and reads them back', () => {
    const spec = querySpecSchema.parse(specOf(researcherForm, columns));
    expect(spec.where).toEqual({
      and: [
        { op: 'code', codes: ['8302-2'] },
        { column: 'hospital', op: 'in', values: ['synthea'] },
        { op: 'months', from: '2020-12' },
        { op: 'date_range', column: 'observed_at', from: '2020-01-01' },
        { column: 'sex', op: 'in', values: ['F'] },
        { column: 'age', op: 'between', min: 18 },
      ],
    });
    expect(spec.groupBy).toEqual([
      { column: 'observed_at', bucket: 'month' },
      { column: 'hospital' },
      { column: 'age', bands: [18, 45, 65] },
    ]);
    expect(spec.measures).toEqual([
      { fn: 'mean', column: 'value' },
      { fn: 'percentile', column: 'value', p: 0.9 },
      { fn: 'histogram', column: 'value', binWidth: 5, binOffset: 0 },
    ]);
    expect(spec.cohort).toEqual({
      match: 'any',
      criteria: [
        {
          where: {
            and: [
              { column: 'code', op: 'eq', value: '29463-7' },
              { column: 'value', op: 'between', min: 60 },
            ],
          },
          minRows: 1,
          exclude: false,
        },
        {
          where: { and: [{ column: 'code', op: 'eq', value: '4548-4' }] },
          minRows: 2,
          exclude: true,
        },
      ],
    });
    const back = formOf(spec, columns);
    expect(back).not.toBeNull();
    expect(sameSpec(specOf(back!, columns), spec)).toBe(true);
    expect(back!.measures[1]!.percent).toBe('90');
  });

  it('reads back the queries the earlier form saved', () => {
    const old = querySpecSchema.parse({
      dataset: 'synthea-observations',
      where: { op: 'code', codes: ['8302-2'] },
      cohort: {
        criteria: [
          {
            where: {
              and: [
                { column: 'code', op: 'eq', value: '29463-7' },
                { column: 'value', op: 'between', min: 60 },
              ],
            },
          },
        ],
      },
      groupBy: [{ column: 'observed_at', bucket: 'year' }],
      measures: [{ fn: 'mean', column: 'value' }, { fn: 'patients' }],
    });
    expect(formOf(old, columns)?.measures.map((measure) => measure.fn)).toEqual([
      'mean',
      'patients',
    ]);
  });

  it('marks an incomplete cohort criterion at its field instead of dropping it', () => {
    const form = { ...emptyForm('synthea-observations'), criteria: [newCriterion()] };
    expect(formProblems(form, columns)).toEqual({
      'criteria.0.code': 'choose the test the patients had, or remove this criterion',
    });
    const filters = {
      ...emptyForm('synthea-observations'),
      filters: [newFilter(), { ...newFilter('age'), op: 'between' as const }],
      measures: [{ ...newMeasure('percentile'), percent: '900' }],
    };
    expect(Object.keys(formProblems(filters, columns))).toEqual([
      'filters.0.column',
      'filters.1.min',
      'measures.0.percent',
    ]);
  });

  it('puts a problem the server names by spec path at the field it came from', () => {
    const built = buildSpec(researcherForm, columns);
    expect(fieldForPath(built, 'measures[1].p')).toBe('measures.1.percent');
    expect(fieldForPath(built, 'cohort.criteria[0].where.and[1].min')).toBe('criteria.0.min');
    expect(fieldForPath(built, 'where.and[4].values[0]')).toBe('filters.1.values');
    expect(fieldForPath(built, 'where.and[3].column')).toBe('filters.0.column');
    expect(fieldForPath(built, 'where.and[0].codes')).toBe('codes');
    expect(fieldForPath(built, 'groupBy[1].column')).toBe('groups.1.column');
    expect(fieldForPath(built, '(spec)')).toBeUndefined();
  });

  it('offers aggregate users no pseudonym to group or filter by', () => {
    const names = allowedColumns(columns, 'aggregate').map((column) => column.name);
    expect(names).not.toContain('patient');
    expect(names).not.toContain('encounter');
    expect(names).toContain('hospital');
    expect(names).toContain('month');
    expect(allowedColumns(columns, 'row').map((column) => column.name)).toContain('patient');
  });

  it('gives no form for a spec it cannot show whole, rather than dropping a part', () => {
    const nested = querySpecSchema.parse({
      dataset: 'synthea-observations',
      where: { or: [{ column: 'value', op: 'gt', value: 100 }] },
      measures: [{ fn: 'patients' }],
    });
    expect(formOf(nested, columns)).toBeNull();
    const named = querySpecSchema.parse({
      dataset: 'synthea-observations',
      measures: [{ fn: 'patients', as: 'people' }],
    });
    expect(formOf(named, columns)).toBeNull();
  });

  it('compares specs with their defaults filled in', () => {
    expect(
      sameSpec(
        { dataset: 'd1', measures: [{ fn: 'patients' }] },
        { dataset: 'd1', measures: [{ fn: 'patients' }], groupBy: [], orderBy: [] },
      ),
    ).toBe(true);
    expect(
      sameSpec(
        { dataset: 'd1', measures: [{ fn: 'patients' }] },
        { dataset: 'd1', measures: [{ fn: 'count' }] },
      ),
    ).toBe(false);
  });
});
