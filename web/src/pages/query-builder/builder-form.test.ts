import { querySpecSchema } from '@medlake/shared';
import { describe, expect, it } from 'vitest';
import { emptyForm, formOf, sameSpec, specOf } from './builder-form.ts';

const dates = new Set(['observed_at']);

describe('the query builder form', () => {
  it('reads back every spec it writes', () => {
    const form = {
      ...emptyForm('synthea-observations'),
      codes: [{ code: '2339-0', label: null }],
      hospitals: ['synthea'],
      monthFrom: '2020-12',
      cohort: { code: { code: '4548-4', label: null }, min: '6.5', max: '' },
      groupColumn: 'observed_at',
      bucket: 'quarter' as const,
      measure: 'histogram' as const,
      binWidth: '5',
    };
    const spec = querySpecSchema.parse(specOf(form, dates));
    expect(spec.where).toEqual({
      and: [
        { op: 'code', codes: ['2339-0'] },
        { column: 'hospital', op: 'in', values: ['synthea'] },
        { op: 'months', from: '2020-12' },
      ],
    });
    expect(formOf(spec)).toEqual(form);
  });

  it('gives no form for a spec it cannot show whole, rather than dropping a part', () => {
    const twoGroups = querySpecSchema.parse({
      dataset: 'synthea-observations',
      groupBy: [{ column: 'sex' }, { column: 'observed_at', bucket: 'year' }],
      measures: [{ fn: 'patients' }],
    });
    expect(formOf(twoGroups)).toBeNull();
    const otherFilter = querySpecSchema.parse({
      dataset: 'synthea-observations',
      where: { column: 'value', op: 'gt', value: 100 },
      measures: [{ fn: 'patients' }],
    });
    expect(formOf(otherFilter)).toBeNull();
    const excludedCohort = querySpecSchema.parse({
      dataset: 'synthea-observations',
      cohort: {
        criteria: [{ where: { and: [{ column: 'code', op: 'eq', value: 'x' }] }, exclude: true }],
      },
      measures: [{ fn: 'patients' }],
    });
    expect(formOf(excludedCohort)).toBeNull();
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
