import type { timeBuckets } from '@medlake/shared';
import {
  canonicalJson,
  groupOutputName,
  measureOutputName,
  querySpecSchema,
  type CohortCriterion,
  type Filter,
  type Measure,
  type QuerySpec,
  type QuerySpecInput,
} from '@medlake/shared';

export type Bucket = (typeof timeBuckets)[number];
export type CodeOption = { code: string; label: string | null };
export type AccessLevel = 'aggregate' | 'row';

/** A column the builder may offer, from the dataset's dictionary. */
export type ColumnInfo = {
  name: string;
  type: string;
  /** A pseudonym (the patient, a visit): only row-level users may filter, group or measure it. */
  linkage: boolean;
};

/** The dictionary's words for a column replaced by a pseudonym (server/../contract.ts). */
const pseudonymTreatment = /pseudonym/i;

/** The columns of a dictionary, with the partition columns every dataset has. */
export function columnsOf(
  dictionary: Array<{ name: string; type: string; treatment: string }>,
): ColumnInfo[] {
  return [
    ...dictionary.map((column) => ({
      name: column.name,
      type: column.type,
      linkage: pseudonymTreatment.test(column.treatment),
    })),
    { name: 'hospital', type: 'varchar', linkage: false },
    { name: 'month', type: 'varchar', linkage: false },
  ];
}

export const isNumericType = (type: string) => ['integer', 'smallint', 'double'].includes(type);
export const isDateType = (type: string) => type === 'date' || type === 'timestamp';

/** The columns a user with this access may name in filters, groups and measures. */
export function allowedColumns(columns: ColumnInfo[], access: AccessLevel): ColumnInfo[] {
  return access === 'row' ? columns : columns.filter((column) => !column.linkage);
}

export type FilterOp =
  'in' | 'not_in' | 'between' | 'date_range' | 'starts_with' | 'is_null' | 'not_null';
export type FilterRow = {
  column: string;
  op: FilterOp;
  /** `in`, `not_in`: the values; `starts_with`: the first one. */
  values: string[];
  /** `between` (numbers), `date_range` (YYYY-MM-DD). */
  min: string;
  max: string;
};

export type CriterionRow = {
  code: CodeOption | null;
  min: string;
  max: string;
  from: string;
  to: string;
  minRows: string;
  exclude: boolean;
};

export type GroupRow = {
  column: string;
  /** For date columns. */
  bucket: Bucket;
  /** For numeric columns: `value` (each value), `bin` (equal width), `bands` (lower bounds). */
  split: 'value' | 'bin' | 'bands';
  binWidth: string;
  bands: string;
};

export type MeasureFn =
  'patients' | 'count' | 'mean' | 'sum' | 'stddev' | 'min' | 'max' | 'percentile' | 'histogram';

export type MeasureRow = {
  fn: MeasureFn;
  column: string;
  /** For percentiles, in percent: 90 is the 90th percentile. */
  percent: string;
  binWidth: string;
};

/**
 * What the builder's form holds: every part of a query spec but the releases to read (a
 * reproducible query is edited as JSON). A spec it cannot hold whole opens in the JSON tab.
 */
export type BuilderForm = {
  dataset: string;
  codes: CodeOption[];
  hospitals: string[];
  monthFrom: string;
  monthTo: string;
  filters: FilterRow[];
  cohortMatch: 'all' | 'any';
  criteria: CriterionRow[];
  /** `rows`: row-level output (row access only), the columns in `select`. */
  output: 'aggregate' | 'rows';
  groups: GroupRow[];
  measures: MeasureRow[];
  select: string[];
  orderBy: string;
  direction: 'asc' | 'desc';
  limit: string;
};

export const measureLabels: Record<MeasureFn, string> = {
  patients: 'Patients',
  count: 'Rows',
  mean: 'Mean',
  sum: 'Sum',
  stddev: 'Standard deviation',
  min: 'Minimum',
  max: 'Maximum',
  percentile: 'Percentile',
  histogram: 'Distribution of values (histogram)',
};

/** Measures one patient's value decides: refused to aggregate users (server/src/policy.ts). */
export const rowOnlyMeasures: ReadonlySet<MeasureFn> = new Set(['min', 'max']);
export const columnMeasures: ReadonlySet<MeasureFn> = new Set([
  'mean',
  'sum',
  'stddev',
  'min',
  'max',
  'percentile',
  'histogram',
]);

export function newFilter(column = ''): FilterRow {
  return { column, op: 'in', values: [], min: '', max: '' };
}
export function newCriterion(): CriterionRow {
  return { code: null, min: '', max: '', from: '', to: '', minRows: '1', exclude: false };
}
export function newGroup(column = ''): GroupRow {
  return { column, bucket: 'month', split: 'value', binWidth: '10', bands: '18, 45, 65' };
}
export function newMeasure(fn: MeasureFn = 'patients', column = 'value'): MeasureRow {
  return { fn, column, percent: '90', binWidth: '10' };
}

export function emptyForm(dataset: string): BuilderForm {
  return {
    dataset,
    codes: [],
    hospitals: [],
    monthFrom: '',
    monthTo: '',
    filters: [],
    cohortMatch: 'all',
    criteria: [],
    output: 'aggregate',
    groups: [],
    measures: [newMeasure('patients')],
    select: [],
    orderBy: '',
    direction: 'asc',
    limit: '',
  };
}

/** The ops a filter on a column of this type offers. */
export function filterOpsFor(type: string): FilterOp[] {
  if (isDateType(type)) return ['date_range', 'is_null', 'not_null'];
  if (isNumericType(type)) return ['between', 'in', 'not_in', 'is_null', 'not_null'];
  return ['in', 'not_in', 'starts_with', 'is_null', 'not_null'];
}

export const filterOpLabels: Record<FilterOp, string> = {
  in: 'is one of',
  not_in: 'is none of',
  between: 'is between',
  date_range: 'is between the dates',
  starts_with: 'starts with',
  is_null: 'is empty',
  not_null: 'is not empty',
};

/** A problem the form found, or the server named, at one field of the form. */
export type FieldProblems = Record<string, string>;

const numberPattern = /^-?\d+(\.\d+)?([eE][-+]?\d+)?$/;
const datePattern = /^\d{4}-\d{2}-\d{2}$/;
const isNumber = (text: string) => numberPattern.test(text.trim());

/**
 * What is missing or wrong in the form, by field: an incomplete part is an error at its field,
 * never left out of the query.
 */
export function formProblems(form: BuilderForm, columns: ColumnInfo[]): FieldProblems {
  const problems: FieldProblems = {};
  const typeOf = (name: string) => columns.find((column) => column.name === name)?.type ?? '';
  const number = (key: string, text: string, what = 'must be a number') => {
    if (text.trim() !== '' && !isNumber(text)) problems[key] = what;
  };
  form.filters.forEach((filter, i) => {
    const key = `filters.${i}`;
    if (!filter.column) {
      problems[`${key}.column`] = 'choose a column, or remove this filter';
      return;
    }
    const numeric = isNumericType(typeOf(filter.column));
    if (filter.op === 'in' || filter.op === 'not_in') {
      if (filter.values.length === 0) problems[`${key}.values`] = 'name at least one value';
      else if (numeric && filter.values.some((value) => !isNumber(value))) {
        problems[`${key}.values`] = 'must be numbers';
      }
    } else if (filter.op === 'starts_with') {
      if (!filter.values[0]?.trim()) problems[`${key}.values`] = 'type the beginning of the text';
    } else if (filter.op === 'between') {
      if (!filter.min.trim() && !filter.max.trim()) {
        problems[`${key}.min`] = 'between needs min, max or both';
      }
      number(`${key}.min`, filter.min);
      number(`${key}.max`, filter.max);
      if (isNumber(filter.min) && isNumber(filter.max) && Number(filter.min) > Number(filter.max)) {
        problems[`${key}.max`] = 'must not be below the lower bound';
      }
    } else if (filter.op === 'date_range') {
      if (!filter.min && !filter.max) problems[`${key}.min`] = 'date_range needs from, to or both';
      for (const [part, text] of [
        ['min', filter.min],
        ['max', filter.max],
      ] as const) {
        if (text && !datePattern.test(text)) {
          problems[`${key}.${part}`] = 'must be a date as YYYY-MM-DD';
        }
      }
    }
  });
  if (form.monthFrom && form.monthTo && form.monthFrom > form.monthTo) {
    problems.monthTo = 'must not be before the first month';
  }
  form.criteria.forEach((criterion, i) => {
    const key = `criteria.${i}`;
    if (!criterion.code) {
      problems[`${key}.code`] = 'choose the test the patients had, or remove this criterion';
    }
    number(`${key}.min`, criterion.min);
    number(`${key}.max`, criterion.max);
    if (
      isNumber(criterion.min) &&
      isNumber(criterion.max) &&
      Number(criterion.min) > Number(criterion.max)
    ) {
      problems[`${key}.max`] = 'must not be below the lower bound';
    }
    if (!/^\d+$/.test(criterion.minRows.trim()) || Number(criterion.minRows) < 1) {
      problems[`${key}.minRows`] = 'must be a whole number, 1 or more';
    }
    for (const part of ['from', 'to'] as const) {
      if (criterion[part] && !datePattern.test(criterion[part])) {
        problems[`${key}.${part}`] = 'must be a date as YYYY-MM-DD';
      }
    }
  });
  if (form.output === 'rows') {
    if (form.select.length === 0) problems.select = 'choose at least one column';
  } else {
    form.groups.forEach((group, i) => {
      const key = `groups.${i}`;
      if (!group.column) {
        problems[`${key}.column`] = 'choose a column, or remove this grouping';
        return;
      }
      if (!isNumericType(typeOf(group.column))) return;
      if (group.split === 'bin' && !(Number(group.binWidth) > 0)) {
        problems[`${key}.binWidth`] = 'must be a number above 0';
      }
      if (group.split === 'bands') {
        const bands = parseBands(group.bands);
        if (!bands) {
          problems[`${key}.bands`] =
            'ascending whole numbers from 1 to 150, separated by commas (18, 45, 65)';
        }
      }
    });
    if (form.measures.length === 0) {
      problems.measures = 'name at least one measure (or select columns for row-level output)';
    }
    form.measures.forEach((measure, i) => {
      const key = `measures.${i}`;
      if (columnMeasures.has(measure.fn) && !measure.column) {
        problems[`${key}.column`] = 'choose the column to measure';
      }
      if (measure.fn === 'percentile') {
        const percent = Number(measure.percent);
        if (!isNumber(measure.percent) || percent < 0 || percent > 100) {
          problems[`${key}.percent`] = 'a percentile from 0 to 100 (50 is the median)';
        }
      }
      if (measure.fn === 'histogram' && !(Number(measure.binWidth) > 0)) {
        problems[`${key}.binWidth`] = 'must be a number above 0';
      }
    });
  }
  if (form.limit.trim() && !(/^\d+$/.test(form.limit.trim()) && Number(form.limit) >= 1)) {
    problems.limit = 'must be a whole number, 1 or more';
  }
  return problems;
}

function parseBands(text: string): number[] | null {
  const parts = text
    .split(',')
    .map((part) => part.trim())
    .filter(Boolean);
  if (parts.length === 0 || parts.some((part) => !/^\d+$/.test(part))) return null;
  const bands = parts.map(Number);
  const ascending = bands.every((band, i) => i === 0 || band > bands[i - 1]!);
  return ascending && bands.every((band) => band >= 1 && band <= 150) ? bands : null;
}

/** A path in a spec as the server names it: `cohort.criteria[0].where`. */
export function specPath(path: readonly PropertyKey[]): string {
  return path
    .map((part, index) =>
      typeof part === 'number' ? `[${part}]` : `${index === 0 ? '' : '.'}${String(part)}`,
    )
    .join('');
}

/** The spec the form describes, and which field of the form each part of it came from. */
export type BuiltSpec = { spec: QuerySpecInput; fields: Array<[specPath: string, field: string]> };

export function buildSpec(form: BuilderForm, columns: ColumnInfo[]): BuiltSpec {
  const fields: Array<[string, string]> = [];
  const typeOf = (name: string) => columns.find((column) => column.name === name)?.type ?? '';
  const valueOf = (column: string, text: string): string | number =>
    isNumericType(typeOf(column)) && isNumber(text) ? Number(text) : text;

  const conditions: Array<[Filter, string]> = [];
  if (form.codes.length > 0) {
    conditions.push([{ op: 'code', codes: form.codes.map((c) => c.code) }, 'codes']);
  }
  if (form.hospitals.length > 0) {
    conditions.push([{ column: 'hospital', op: 'in', values: form.hospitals }, 'hospitals']);
  }
  if (form.monthFrom || form.monthTo) {
    conditions.push([
      {
        op: 'months',
        ...(form.monthFrom ? { from: form.monthFrom } : {}),
        ...(form.monthTo ? { to: form.monthTo } : {}),
      },
      'monthFrom',
    ]);
  }
  form.filters.forEach((filter, i) => {
    const key = `filters.${i}`;
    const condition = filterOf(filter, valueOf);
    if (condition) conditions.push([condition, key]);
  });
  /** A condition's parts, each at the field of the form it came from. */
  const conditionFields = (path: string, key: string) => {
    if (!key.startsWith('filters.')) {
      fields.push([path, key]);
      return;
    }
    fields.push([path, `${key}.column`]);
    for (const [part, field] of [
      ['values', 'values'],
      ['value', 'values'],
      ['min', 'min'],
      ['max', 'max'],
      ['from', 'min'],
      ['to', 'max'],
    ]) {
      fields.push([`${path}.${part}`, `${key}.${field}`]);
    }
  };
  let where: Filter | undefined;
  if (conditions.length === 1) {
    where = conditions[0]![0];
    conditionFields('where', conditions[0]![1]);
  } else if (conditions.length > 1) {
    where = { and: conditions.map(([condition]) => condition) };
    conditions.forEach(([, key], i) => conditionFields(`where.and[${i}]`, key));
  }

  const criteria: CohortCriterion[] = form.criteria.map((criterion, i) => {
    const path = `cohort.criteria[${i}]`;
    fields.push([path, `criteria.${i}.code`]);
    fields.push([`${path}.where.and[0]`, `criteria.${i}.code`]);
    fields.push([`${path}.where.and[1]`, `criteria.${i}.min`]);
    fields.push([`${path}.from`, `criteria.${i}.from`]);
    fields.push([`${path}.to`, `criteria.${i}.to`]);
    fields.push([`${path}.minRows`, `criteria.${i}.minRows`]);
    const range =
      criterion.min.trim() || criterion.max.trim()
        ? [
            {
              column: valueColumn(columns),
              op: 'between' as const,
              ...(criterion.min.trim() ? { min: Number(criterion.min) } : {}),
              ...(criterion.max.trim() ? { max: Number(criterion.max) } : {}),
            },
          ]
        : [];
    return {
      // An incomplete criterion is refused by formProblems before it gets here; if it does,
      // the server refuses the empty code rather than the criterion being dropped.
      where: { and: [{ column: 'code', op: 'eq', value: criterion.code?.code ?? '' }, ...range] },
      ...(criterion.from ? { from: criterion.from } : {}),
      ...(criterion.to ? { to: criterion.to } : {}),
      minRows: Number(criterion.minRows) || 1,
      exclude: criterion.exclude,
    };
  });

  const spec: QuerySpecInput = {
    dataset: form.dataset,
    ...(where ? { where } : {}),
    ...(criteria.length > 0 ? { cohort: { match: form.cohortMatch, criteria } } : {}),
  };
  if (form.output === 'rows') {
    spec.select = form.select;
    fields.push(['select', 'select']);
  } else {
    spec.groupBy = form.groups.map((group, i) => {
      fields.push([`groupBy[${i}]`, `groups.${i}.column`]);
      const type = typeOf(group.column);
      if (isDateType(type)) {
        fields.push([`groupBy[${i}].bucket`, `groups.${i}.bucket`]);
        return { column: group.column, bucket: group.bucket };
      }
      if (isNumericType(type) && group.split === 'bin') {
        fields.push([`groupBy[${i}].binWidth`, `groups.${i}.binWidth`]);
        return { column: group.column, binWidth: Number(group.binWidth) };
      }
      if (isNumericType(type) && group.split === 'bands') {
        fields.push([`groupBy[${i}].bands`, `groups.${i}.bands`]);
        return { column: group.column, bands: parseBands(group.bands) ?? [] };
      }
      return { column: group.column };
    });
    spec.measures = form.measures.map((measure, i) => {
      fields.push([`measures[${i}]`, `measures.${i}.fn`]);
      fields.push([`measures[${i}].column`, `measures.${i}.column`]);
      fields.push([`measures[${i}].p`, `measures.${i}.percent`]);
      fields.push([`measures[${i}].binWidth`, `measures.${i}.binWidth`]);
      return measureOf(measure);
    });
    fields.push(['measures', 'measures']);
    fields.push(['groupBy', 'groups']);
  }
  if (form.orderBy) {
    spec.orderBy = [{ by: form.orderBy, direction: form.direction }];
    fields.push(['orderBy', 'orderBy']);
  }
  if (form.limit.trim()) {
    spec.limit = Number(form.limit);
    fields.push(['limit', 'limit']);
  }
  return { spec, fields };
}

/** The spec the form describes. */
export function specOf(form: BuilderForm, columns: ColumnInfo[]): QuerySpecInput {
  return buildSpec(form, columns).spec;
}

/** The column that holds a test's result: `value` where the dataset has it. */
export function valueColumn(columns: ColumnInfo[]): string {
  return (
    columns.find((column) => column.name === 'value')?.name ??
    columns.find((column) => column.type === 'double')?.name ??
    'value'
  );
}

function filterOf(
  filter: FilterRow,
  valueOf: (column: string, text: string) => string | number,
): Filter | undefined {
  const column = filter.column;
  switch (filter.op) {
    case 'in':
    case 'not_in':
      return { column, op: filter.op, values: filter.values.map((v) => valueOf(column, v)) };
    case 'starts_with':
      return { column, op: 'starts_with', value: filter.values[0] ?? '' };
    case 'between':
      return {
        column,
        op: 'between',
        ...(filter.min.trim() ? { min: valueOf(column, filter.min) } : {}),
        ...(filter.max.trim() ? { max: valueOf(column, filter.max) } : {}),
      };
    case 'date_range':
      return {
        op: 'date_range',
        column,
        ...(filter.min ? { from: filter.min } : {}),
        ...(filter.max ? { to: filter.max } : {}),
      };
    case 'is_null':
    case 'not_null':
      return { column, op: filter.op };
  }
}

function measureOf(measure: MeasureRow): Measure {
  switch (measure.fn) {
    case 'patients':
    case 'count':
      return { fn: measure.fn };
    case 'percentile':
      return { fn: 'percentile', column: measure.column, p: Number(measure.percent) / 100 };
    case 'histogram':
      return {
        fn: 'histogram',
        column: measure.column,
        binWidth: Number(measure.binWidth),
        binOffset: 0,
      };
    default:
      return { fn: measure.fn, column: measure.column };
  }
}

/**
 * The field of the form a problem the server names belongs to (its spec path, as
 * `cohort.criteria[0].where.and[1].min`), or undefined when none does: the nearest part of the
 * spec the form wrote.
 */
export function fieldForPath(built: BuiltSpec, path: string): string | undefined {
  const clean = path.replace(/^\//, '').replace(/^spec\./, '');
  let best: [string, string] | undefined;
  for (const entry of built.fields) {
    const [prefix] = entry;
    const matches =
      clean === prefix || clean.startsWith(`${prefix}.`) || clean.startsWith(`${prefix}[`);
    if (matches && (!best || prefix.length > best[0].length)) best = entry;
  }
  return best?.[1];
}

/**
 * The form for a spec (a past query, a saved one, the JSON tab), or null when the form cannot
 * say all of it: the form is read back into a spec and compared with the original, so nothing
 * is lost silently.
 */
export function formOf(spec: QuerySpec, columns: ColumnInfo[]): BuilderForm | null {
  if (spec.releases) return null;
  const form = emptyForm(spec.dataset);
  form.measures = [];
  const conditions = spec.where ? ('and' in spec.where ? spec.where.and : [spec.where]) : [];
  for (const condition of conditions) {
    if ('and' in condition || 'or' in condition || 'not' in condition) return null;
    if (condition.op === 'code' && form.codes.length === 0) {
      form.codes = condition.codes.map((code) => ({ code, label: null }));
    } else if (
      condition.op === 'in' &&
      condition.column === 'hospital' &&
      form.hospitals.length === 0
    ) {
      form.hospitals = condition.values.map(String);
    } else if (condition.op === 'months' && !form.monthFrom && !form.monthTo) {
      form.monthFrom = condition.from ?? '';
      form.monthTo = condition.to ?? '';
    } else if (condition.op === 'in' || condition.op === 'not_in') {
      form.filters.push({
        ...newFilter(condition.column),
        op: condition.op,
        values: condition.values.map(String),
      });
    } else if (condition.op === 'starts_with') {
      form.filters.push({
        ...newFilter(condition.column),
        op: 'starts_with',
        values: [condition.value],
      });
    } else if (condition.op === 'between') {
      form.filters.push({
        ...newFilter(condition.column),
        op: 'between',
        min: condition.min === undefined ? '' : String(condition.min),
        max: condition.max === undefined ? '' : String(condition.max),
      });
    } else if (condition.op === 'date_range' && condition.column) {
      form.filters.push({
        ...newFilter(condition.column),
        op: 'date_range',
        min: condition.from ?? '',
        max: condition.to ?? '',
      });
    } else if (condition.op === 'is_null' || condition.op === 'not_null') {
      form.filters.push({ ...newFilter(condition.column), op: condition.op });
    } else {
      return null;
    }
  }
  if (spec.cohort) {
    form.cohortMatch = spec.cohort.match;
    for (const criterion of spec.cohort.criteria) {
      if (!('and' in criterion.where)) return null;
      const [code, range] = criterion.where.and;
      if (!code || !('value' in code) || code.column !== 'code' || code.op !== 'eq') return null;
      const row: CriterionRow = {
        ...newCriterion(),
        code: { code: String(code.value), label: null },
        from: criterion.from ?? '',
        to: criterion.to ?? '',
        minRows: String(criterion.minRows),
        exclude: criterion.exclude,
      };
      if (range && 'op' in range && range.op === 'between') {
        row.min = range.min === undefined ? '' : String(range.min);
        row.max = range.max === undefined ? '' : String(range.max);
      }
      form.criteria.push(row);
    }
  }
  if (spec.select) {
    form.output = 'rows';
    form.select = spec.select;
  }
  for (const group of spec.groupBy) {
    if (group.as) return null;
    const row = newGroup(group.column);
    if ('bucket' in group) row.bucket = group.bucket;
    if ('binWidth' in group) {
      row.split = 'bin';
      row.binWidth = String(group.binWidth);
    }
    if ('bands' in group) {
      row.split = 'bands';
      row.bands = group.bands.join(', ');
    }
    form.groups.push(row);
  }
  for (const measure of spec.measures) {
    if (measure.as) return null;
    const row = newMeasure(measure.fn, 'column' in measure ? measure.column : 'value');
    if (measure.fn === 'percentile')
      row.percent = String(Number((measure.p * 100).toPrecision(12)));
    if (measure.fn === 'histogram') row.binWidth = String(measure.binWidth);
    form.measures.push(row);
  }
  if (spec.orderBy.length > 1) return null;
  if (spec.orderBy[0]) {
    form.orderBy = spec.orderBy[0].by;
    form.direction = spec.orderBy[0].direction;
  }
  if (spec.limit !== undefined) form.limit = String(spec.limit);
  return sameSpec(specOf(form, columns), spec) ? form : null;
}

/** Whether two specs ask the same, defaults filled in. */
export function sameSpec(a: unknown, b: unknown): boolean {
  const left = querySpecSchema.safeParse(a);
  const right = querySpecSchema.safeParse(b);
  return left.success && right.success && canonicalJson(left.data) === canonicalJson(right.data);
}

/** The names the result's columns will have, for "order by". */
export function outputNames(form: BuilderForm, columns: ColumnInfo[]): string[] {
  if (form.output === 'rows') return form.select;
  const spec = querySpecSchema.safeParse(specOf(form, columns));
  if (!spec.success) return [];
  return [...spec.data.groupBy.map(groupOutputName), ...spec.data.measures.map(measureOutputName)];
}

const list = (items: string[]) =>
  items.length <= 1
    ? (items[0] ?? '')
    : `${items.slice(0, -1).join(', ')} and ${items[items.length - 1]}`;

function ordinal(text: string): string {
  const n = Number(text);
  if (!Number.isInteger(n)) return `${text}th`;
  const tens = n % 100;
  const suffix = tens >= 11 && tens <= 13 ? 'th' : (['th', 'st', 'nd', 'rd'][n % 10] ?? 'th');
  return `${n}${suffix}`;
}

function measureWords(measure: MeasureRow): string {
  switch (measure.fn) {
    case 'patients':
      return 'patients';
    case 'count':
      return 'rows';
    case 'percentile':
      return `the ${ordinal(measure.percent)} percentile of ${measure.column}`;
    case 'histogram':
      return `the distribution of ${measure.column} (bins of ${measure.binWidth || '?'})`;
    case 'stddev':
      return `the standard deviation of ${measure.column}`;
    default:
      return `the ${measure.fn} of ${measure.column}`;
  }
}

function range(min: string, max: string): string {
  return [min ? `from ${min}` : '', max ? `to ${max}` : ''].filter(Boolean).join(' ');
}

/** The query in one sentence, so that what runs is what the researcher meant. */
export function describe(form: BuilderForm, columns: ColumnInfo[]): string {
  const typeOf = (name: string) => columns.find((column) => column.name === name)?.type ?? '';
  const measured =
    form.output === 'rows'
      ? `The rows' ${list(form.select) || '(no column yet)'}`
      : list(form.measures.map(measureWords)) || '(no measure yet)';
  const tests =
    form.codes.length > 0
      ? `with tests ${form.codes.map((item) => item.code).join(', ')}`
      : 'with any test';
  const where = [
    form.hospitals.length > 0 ? `at ${form.hospitals.join(', ')}` : '',
    form.monthFrom || form.monthTo ? `delivered ${range(form.monthFrom, form.monthTo)}` : '',
    ...form.filters.map((filter) => {
      const op = filterOpLabels[filter.op];
      if (filter.op === 'between' || filter.op === 'date_range') {
        return `${filter.column || '?'} ${range(filter.min, filter.max)}`;
      }
      if (filter.op === 'is_null' || filter.op === 'not_null') return `${filter.column} ${op}`;
      return `${filter.column || '?'} ${op} ${filter.values.join(', ') || '?'}`;
    }),
  ]
    .filter(Boolean)
    .join(', ');
  const criteria = form.criteria.map((criterion) => {
    const value =
      criterion.min || criterion.max ? ` with a value ${range(criterion.min, criterion.max)}` : '';
    const when = criterion.from || criterion.to ? ` ${range(criterion.from, criterion.to)}` : '';
    const times = Number(criterion.minRows) > 1 ? ` at least ${criterion.minRows} times` : '';
    return `${criterion.exclude ? 'never had' : 'had'} ${criterion.code?.code ?? '(no test chosen)'}${value}${times}${when}`;
  });
  const cohort =
    criteria.length > 0
      ? ` among patients who ${criteria.join(form.cohortMatch === 'all' ? ' and ' : ' or ')}`
      : '';
  const groups =
    form.output === 'aggregate' && form.groups.length > 0
      ? `, by ${list(
          form.groups.map((group) => {
            const type = typeOf(group.column);
            if (isDateType(type)) return `${group.column} ${group.bucket}`;
            if (isNumericType(type) && group.split === 'bin') {
              return `${group.column} in bins of ${group.binWidth}`;
            }
            if (isNumericType(type) && group.split === 'bands') {
              return `${group.column} band (${group.bands})`;
            }
            return group.column || '?';
          }),
        )}`
      : '';
  const order = form.orderBy
    ? `, ordered by ${form.orderBy}${form.direction === 'desc' ? ' descending' : ''}`
    : '';
  const limit = form.limit ? `, at most ${form.limit} rows` : '';
  const sentence = `${measured} ${tests}${where ? ` ${where}` : ''}${cohort}${groups}${order}${limit}, in ${form.dataset}.`;
  return sentence.charAt(0).toUpperCase() + sentence.slice(1);
}
