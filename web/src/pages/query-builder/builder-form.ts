import type { timeBuckets } from '@medlake/shared';
import {
  canonicalJson,
  querySpecSchema,
  type Filter,
  type QuerySpec,
  type QuerySpecInput,
} from '@medlake/shared';

export type Bucket = (typeof timeBuckets)[number];
export type CodeOption = { code: string; label: string | null };
export type MeasureChoice = 'patients' | 'count' | 'mean' | 'histogram';

/**
 * What the builder's form holds. It covers the queries most researchers ask (which tests,
 * which hospitals and months, one cohort criterion, one grouping, one measure); anything else
 * the query spec can say is edited as JSON.
 */
export type BuilderForm = {
  dataset: string;
  codes: CodeOption[];
  hospitals: string[];
  monthFrom: string;
  monthTo: string;
  cohort: { code: CodeOption | null; min: string; max: string } | null;
  groupColumn: string;
  bucket: Bucket;
  measure: MeasureChoice;
  binWidth: string;
};

export function emptyForm(dataset: string): BuilderForm {
  return {
    dataset,
    codes: [],
    hospitals: [],
    monthFrom: '',
    monthTo: '',
    cohort: null,
    groupColumn: '',
    bucket: 'month',
    measure: 'patients',
    binWidth: '10',
  };
}

/** The spec the form describes; `dateColumns` tells which group columns take a time bucket. */
export function specOf(form: BuilderForm, dateColumns: ReadonlySet<string>): QuerySpecInput {
  const conditions: Filter[] = [];
  if (form.codes.length > 0) conditions.push({ op: 'code', codes: form.codes.map((c) => c.code) });
  if (form.hospitals.length > 0) {
    conditions.push({ column: 'hospital', op: 'in', values: form.hospitals });
  }
  if (form.monthFrom || form.monthTo) {
    conditions.push({
      op: 'months',
      ...(form.monthFrom ? { from: form.monthFrom } : {}),
      ...(form.monthTo ? { to: form.monthTo } : {}),
    });
  }
  const cohort = form.cohort;
  const cohortCode = cohort?.code;
  return {
    dataset: form.dataset,
    ...(conditions.length === 1
      ? { where: conditions[0] }
      : conditions.length > 1
        ? { where: { and: conditions } }
        : {}),
    ...(cohort && cohortCode
      ? {
          cohort: {
            criteria: [
              {
                where: {
                  and: [
                    { column: 'code', op: 'eq', value: cohortCode.code },
                    ...(cohort.min || cohort.max
                      ? [
                          {
                            column: 'value',
                            op: 'between' as const,
                            ...(cohort.min ? { min: Number(cohort.min) } : {}),
                            ...(cohort.max ? { max: Number(cohort.max) } : {}),
                          },
                        ]
                      : []),
                  ],
                },
              },
            ],
          },
        }
      : {}),
    groupBy: form.groupColumn
      ? [
          dateColumns.has(form.groupColumn)
            ? { column: form.groupColumn, bucket: form.bucket }
            : { column: form.groupColumn },
        ]
      : [],
    measures:
      form.measure === 'histogram'
        ? [{ fn: 'histogram', column: 'value', binWidth: Number(form.binWidth) || 1 }]
        : [
            form.measure === 'mean' ? { fn: 'mean', column: 'value' } : { fn: form.measure },
            ...(form.measure === 'patients' ? [] : [{ fn: 'patients' as const }]),
          ],
  };
}

/**
 * The form for a spec (a past query, a saved one), or null when the form cannot say all of
 * it: the form is read back into a spec and compared with the original, so nothing is lost
 * silently.
 */
export function formOf(spec: QuerySpec): BuilderForm | null {
  const form = emptyForm(spec.dataset);
  const conditions = spec.where ? ('and' in spec.where ? spec.where.and : [spec.where]) : [];
  for (const condition of conditions) {
    if ('op' in condition && condition.op === 'code') {
      form.codes = condition.codes.map((code) => ({ code, label: null }));
    } else if ('op' in condition && condition.op === 'in' && condition.column === 'hospital') {
      form.hospitals = condition.values.map(String);
    } else if ('op' in condition && condition.op === 'months') {
      form.monthFrom = condition.from ?? '';
      form.monthTo = condition.to ?? '';
    }
  }
  const criterion = spec.cohort?.criteria[0];
  if (criterion && 'and' in criterion.where) {
    const [code, range] = criterion.where.and;
    if (code && 'value' in code && code.column === 'code') {
      form.cohort = { code: { code: String(code.value), label: null }, min: '', max: '' };
      if (range && 'op' in range && range.op === 'between') {
        form.cohort.min = range.min === undefined ? '' : String(range.min);
        form.cohort.max = range.max === undefined ? '' : String(range.max);
      }
    }
  }
  const group = spec.groupBy[0];
  if (group) {
    form.groupColumn = group.column;
    if ('bucket' in group) form.bucket = group.bucket;
  }
  const measure = spec.measures[0];
  if (measure?.fn === 'histogram') {
    form.measure = 'histogram';
    form.binWidth = String(measure.binWidth);
  } else if (measure && ['patients', 'count', 'mean'].includes(measure.fn)) {
    form.measure = measure.fn as MeasureChoice;
  }
  // A bucketed group is on a date column: all the form needs to know to read it back.
  const dateColumns = new Set(
    spec.groupBy.filter((item) => 'bucket' in item).map((item) => item.column),
  );
  return sameSpec(specOf(form, dateColumns), spec) ? form : null;
}

/** Whether two specs ask the same, defaults filled in. */
export function sameSpec(a: unknown, b: unknown): boolean {
  const left = querySpecSchema.safeParse(a);
  const right = querySpecSchema.safeParse(b);
  return left.success && right.success && canonicalJson(left.data) === canonicalJson(right.data);
}

/** The query in one sentence, so that what runs is what the researcher meant. */
export function describe(form: BuilderForm, dateColumns: ReadonlySet<string>): string {
  const measured =
    form.measure === 'histogram'
      ? `The distribution of values (bins of ${form.binWidth || 1})`
      : form.measure === 'mean'
        ? 'The mean value and patients'
        : form.measure === 'count'
          ? 'Rows and patients'
          : 'Patients';
  const tests =
    form.codes.length > 0
      ? `with tests ${form.codes.map((item) => item.code).join(', ')}`
      : 'with any test';
  const where = [
    form.hospitals.length > 0 ? `at ${form.hospitals.join(', ')}` : '',
    form.monthFrom || form.monthTo
      ? `delivered ${form.monthFrom ? `from ${form.monthFrom}` : ''}${form.monthFrom && form.monthTo ? ' ' : ''}${form.monthTo ? `to ${form.monthTo}` : ''}`
      : '',
  ]
    .filter(Boolean)
    .join(', ');
  const cohort = form.cohort?.code
    ? ` among patients who had ${form.cohort.code.code}${form.cohort.min || form.cohort.max ? ` with a value ${form.cohort.min ? `from ${form.cohort.min}` : ''}${form.cohort.min && form.cohort.max ? ' ' : ''}${form.cohort.max ? `to ${form.cohort.max}` : ''}` : ''}`
    : '';
  const group = form.groupColumn
    ? `, per ${form.groupColumn}${dateColumns.has(form.groupColumn) ? ` by ${form.bucket}` : ''}`
    : '';
  return `${measured} ${tests}${where ? ` ${where}` : ''}${cohort}${group}, in ${form.dataset}.`;
}
