import { z } from 'zod';

/**
 * A query spec: what a researcher asks of one dataset, as JSON. The server compiles it to SQL
 * for the configured engine; nothing in it is ever pasted into SQL text. Column names are
 * checked against the dataset's contract, values travel as parameters. docs/query-spec.md
 * explains every part with examples.
 */

/** The partition columns every dataset has besides its contract's lake columns. */
export const partitionColumns = ['hospital', 'month'] as const;

const columnRef = z
  .string()
  .regex(/^[a-z][a-z0-9_]{0,62}$/, 'must be a column name of the dataset (snake_case)');
const scalar = z.union([z.string().max(1000), z.number().finite(), z.boolean()]);
const month = z.string().regex(/^\d{4}-(0[1-9]|1[0-2])$/, 'must be a month as YYYY-MM');
const isoDate = z
  .string()
  .regex(
    /^\d{4}-\d{2}-\d{2}(T\d{2}:\d{2}(:\d{2}(\.\d{1,6})?)?Z?)?$/,
    'must be a date as YYYY-MM-DD',
  );
const maxListLength = 10_000;

const comparison = z.object({
  column: columnRef,
  op: z.enum(['eq', 'ne', 'lt', 'lte', 'gt', 'gte']),
  value: scalar,
});
const setMembership = z.object({
  column: columnRef,
  op: z.enum(['in', 'not_in']),
  values: z.array(scalar).min(1).max(maxListLength),
});
const range = z
  .object({
    column: columnRef,
    op: z.literal('between'),
    /** Inclusive. */
    min: scalar.optional(),
    /** Inclusive. */
    max: scalar.optional(),
  })
  .refine((value) => value.min !== undefined || value.max !== undefined, {
    message: 'between needs min, max or both',
  });
const nullTest = z.object({ column: columnRef, op: z.enum(['is_null', 'not_null']) });
const prefix = z.object({
  column: columnRef,
  op: z.literal('starts_with'),
  value: z.string().min(1).max(200),
});
/** On the dataset's code column: one code or a list. */
const codes = z.object({
  op: z.literal('code'),
  codes: z.array(z.string().min(1).max(100)).min(1).max(maxListLength),
});
/** On the dataset's code column: a named list of codes kept in the server's configuration. */
const codeSet = z.object({
  op: z.literal('code_set'),
  name: z.string().regex(/^[a-z0-9-]{1,64}$/, 'must be the name of a code set'),
});
/** On a date column (the first event date when none is named): from and to, inclusive. */
const dateRange = z
  .object({
    op: z.literal('date_range'),
    column: columnRef.optional(),
    from: isoDate.optional(),
    to: isoDate.optional(),
  })
  .refine((value) => value.from !== undefined || value.to !== undefined, {
    message: 'date_range needs from, to or both',
  });
/** The latest N upload months among the releases read. */
const lastMonths = z.object({
  op: z.literal('last_months'),
  months: z.number().int().min(1).max(1200),
});
const monthRange = z
  .object({ op: z.literal('months'), from: month.optional(), to: month.optional() })
  .refine((value) => value.from !== undefined || value.to !== undefined, {
    message: 'months needs from, to or both',
  });

export type Condition =
  | z.infer<typeof comparison>
  | z.infer<typeof setMembership>
  | z.infer<typeof range>
  | z.infer<typeof nullTest>
  | z.infer<typeof prefix>
  | z.infer<typeof codes>
  | z.infer<typeof codeSet>
  | z.infer<typeof dateRange>
  | z.infer<typeof lastMonths>
  | z.infer<typeof monthRange>;

export type Filter = Condition | { and: Filter[] } | { or: Filter[] } | { not: Filter };

const maxFilterDepth = 12;

export const filterSchema: z.ZodType<Filter> = z.lazy(() =>
  z.union([
    z.object({ and: z.array(filterSchema).min(1).max(100) }).strict(),
    z.object({ or: z.array(filterSchema).min(1).max(100) }).strict(),
    z.object({ not: filterSchema }).strict(),
    comparison.strict(),
    setMembership.strict(),
    range,
    nullTest.strict(),
    prefix.strict(),
    codes.strict(),
    codeSet.strict(),
    dateRange,
    lastMonths.strict(),
    monthRange,
  ]),
);

/**
 * A cohort criterion: the patients who had at least `minRows` rows matching `where` (a code
 * with a value in a range, say), optionally within a window of event dates. `exclude` turns it
 * into "patients who did not".
 */
export const cohortCriterionSchema = z
  .object({
    where: filterSchema,
    from: isoDate.optional(),
    to: isoDate.optional(),
    minRows: z.number().int().min(1).max(1_000_000).default(1),
    exclude: z.boolean().default(false),
  })
  .strict();

export const timeBuckets = ['day', 'week', 'month', 'quarter', 'year'] as const;

const groupName = z
  .string()
  .regex(/^[a-z][a-z0-9_]{0,62}$/, 'must be snake_case')
  .optional();

export const groupSchema = z.union([
  z.object({ column: columnRef, as: groupName }).strict(),
  z.object({ column: columnRef, bucket: z.enum(timeBuckets), as: groupName }).strict(),
  z
    .object({
      column: columnRef,
      /** Lower bounds of the bands after the first, ascending: [18, 45, 65] gives 0-17, 18-44, 45-64, 65+. */
      bands: z.array(z.number().int().min(1).max(150)).min(1).max(30),
      as: groupName,
    })
    .strict(),
  z
    .object({
      column: columnRef,
      /** Equal-width bins: the value rounded down to a multiple of width (plus offset). */
      binWidth: z.number().positive().finite(),
      binOffset: z.number().finite().default(0),
      as: groupName,
    })
    .strict(),
]);
export type Group = z.infer<typeof groupSchema>;

export const measureSchema = z.union([
  z.object({ fn: z.enum(['count', 'patients']), as: groupName }).strict(),
  z
    .object({
      fn: z.enum(['sum', 'mean', 'min', 'max', 'stddev']),
      column: columnRef,
      as: groupName,
    })
    .strict(),
  z
    .object({
      fn: z.literal('percentile'),
      column: columnRef,
      /** Between 0 and 1: 0.5 is the median. */
      p: z.number().min(0).max(1),
      as: groupName,
    })
    .strict(),
  z
    .object({
      fn: z.literal('histogram'),
      column: columnRef,
      binWidth: z.number().positive().finite(),
      binOffset: z.number().finite().default(0),
      as: groupName,
    })
    .strict(),
]);
export type Measure = z.infer<typeof measureSchema>;

export const querySpecSchema = z
  .object({
    /** The dataset's id, e.g. `lab-results`. */
    dataset: z.string().regex(/^[a-z][a-z0-9-]{1,62}$/, 'must be a dataset id'),
    /**
     * Release ids to read, for a reproducible query. Default: the current release of every
     * hospital and month.
     */
    releases: z.array(z.uuid()).min(1).max(10_000).optional(),
    where: filterSchema.optional(),
    cohort: z
      .object({
        match: z.enum(['all', 'any']).default('all'),
        criteria: z.array(cohortCriterionSchema).min(1).max(20),
      })
      .strict()
      .optional(),
    groupBy: z.array(groupSchema).max(6).default([]),
    measures: z.array(measureSchema).max(20).default([]),
    /** Row-level output (only for users with row access): these columns of every matching row. */
    select: z.array(columnRef).min(1).max(200).optional(),
    orderBy: z
      .array(
        z.object({ by: columnRef, direction: z.enum(['asc', 'desc']).default('asc') }).strict(),
      )
      .max(10)
      .default([]),
    limit: z.number().int().min(1).max(10_000_000).optional(),
  })
  .strict()
  .superRefine((spec, context) => {
    const problem = (message: string, path: string) =>
      context.addIssue({ code: 'custom', message, path: [path] });
    if (spec.select && (spec.measures.length > 0 || spec.groupBy.length > 0)) {
      problem('a query either selects rows or groups and measures, not both', 'select');
    }
    if (!spec.select && spec.measures.length === 0) {
      problem('name at least one measure (or select columns for row-level output)', 'measures');
    }
    if (spec.where && filterDepth(spec.where) > maxFilterDepth) {
      problem(`filters may nest at most ${maxFilterDepth} levels deep`, 'where');
    }
    // A lone surrogate is no character: no database stores it as text or JSON (PostgreSQL
    // refuses the spec's JSON with a bare error), and the engines read it as U+FFFD.
    for (const path of malformedText(spec, [])) {
      context.addIssue({
        code: 'custom',
        message: 'must be text: it holds half of a UTF-16 surrogate pair',
        path,
      });
    }
  });

const loneSurrogate = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

/** The paths of the strings in a value that hold a lone UTF-16 surrogate. */
function malformedText(
  value: unknown,
  path: Array<string | number>,
): Array<Array<string | number>> {
  if (typeof value === 'string') return loneSurrogate.test(value) ? [path] : [];
  if (Array.isArray(value))
    return value.flatMap((item, index) => malformedText(item, [...path, index]));
  if (value !== null && typeof value === 'object') {
    return Object.entries(value).flatMap(([key, item]) => malformedText(item, [...path, key]));
  }
  return [];
}

export type QuerySpec = z.infer<typeof querySpecSchema>;
export type QuerySpecInput = z.input<typeof querySpecSchema>;
export type CohortCriterion = z.infer<typeof cohortCriterionSchema>;

function filterDepth(filter: Filter): number {
  if ('and' in filter) return 1 + Math.max(...filter.and.map(filterDepth));
  if ('or' in filter) return 1 + Math.max(...filter.or.map(filterDepth));
  if ('not' in filter) return 1 + filterDepth(filter.not);
  return 1;
}

/** The name a group or measure has in the result: its `as`, or one made from its parts. */
export function groupOutputName(group: Group): string {
  if (group.as) return group.as;
  if ('bucket' in group) return `${group.column}_${group.bucket}`;
  if ('bands' in group) return `${group.column}_band`;
  if ('binWidth' in group) return `${group.column}_bin`;
  return group.column;
}

export function measureOutputName(measure: Measure): string {
  if (measure.as) return measure.as;
  switch (measure.fn) {
    case 'count':
      return 'rows';
    case 'patients':
      return 'patients';
    case 'percentile':
      return `${measure.column}_p${Math.round(measure.p * 100)}`;
    default:
      return `${measure.column}_${measure.fn}`;
  }
}
