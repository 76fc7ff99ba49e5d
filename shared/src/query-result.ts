import { z } from 'zod';
import { pageOf } from './paging.ts';

/** A column of a query result. */
export const resultColumnSchema = z.object({
  name: z.string(),
  kind: z.enum(['group', 'measure', 'row']),
  type: z.string(),
  fn: z.string().optional(),
  /** For percentiles: the fraction asked for. */
  p: z.number().optional(),
});

export const disclosureRuleSchema = z.object({
  rule: z.enum([
    'small_cell',
    'complementary',
    'small_histogram_bin',
    'single_record_measure',
    'release_ledger',
    'noise',
    'row_access',
  ]),
  description: z.string(),
  affected: z.number().int(),
});

/**
 * A cell value as the API shows it: suppressed counts are the text "<N" (N the dataset's
 * threshold); other suppressed measures are null.
 */
export const cellSchema = z.unknown();

/** The "key points" of a finished query. */
export const querySummarySchema = z.object({
  kind: z.enum(['aggregate', 'rows']),
  accessLevel: z.enum(['aggregate', 'row']),
  columns: z.array(resultColumnSchema),
  /** Rows in the result table. */
  rowCount: z.number().int(),
  /**
   * The measures over all matching rows (aggregates only), after disclosure control; for
   * aggregate access, over the rows of the groups shown when groups were withheld.
   */
  total: z.record(z.string(), cellSchema).nullable(),
  /** How many rows and patients match (aggregates only): numbers, or "<N" when suppressed. */
  matching: z
    .object({
      rows: z.union([z.number(), z.string()]),
      patients: z.union([z.number(), z.string()]),
    })
    .nullable(),
  suppressedGroups: z.number().int(),
  /**
   * Groups of fewer patients than the threshold, left out of an aggregate result entirely
   * (labels included) for aggregate access; the total covers only the groups shown.
   */
  withheldGroups: z.number().int(),
  threshold: z.number().int(),
  rules: z.array(disclosureRuleSchema),
  /** The releases read: how many, and which hospitals and months they cover. */
  releases: z.object({
    count: z.number().int(),
    hospitals: z.array(z.string()),
    months: z.array(z.string()),
  }),
  /** Plain sentences for the top of the results page. */
  keyPoints: z.array(z.string()),
});
export type QuerySummary = z.infer<typeof querySummarySchema>;

export const queryStatuses = ['queued', 'running', 'succeeded', 'failed', 'cancelled'] as const;

export const resultPageSchema = z.object({
  page: z.number().int(),
  pageSize: z.number().int(),
  totalRows: z.number().int(),
  columns: z.array(resultColumnSchema),
  rows: z.array(z.record(z.string(), cellSchema)),
});
export type ResultPage = z.infer<typeof resultPageSchema>;

/**
 * The airlock's state of a result (docs/privacy.md): `pending` and `rejected` results show
 * nothing (no summary, pages or exports) to their owner. Checks are named, without figures.
 */
export const resultReviewSchema = z.object({
  state: z.enum(['not_needed', 'pending', 'approved', 'rejected']),
  checks: z.array(z.enum(['row_level', 'small_cells'])),
  message: z.string(),
});
export type ResultReviewView = z.infer<typeof resultReviewSchema>;

export const queryJobSchema = z.object({
  id: z.uuid(),
  dataset: z.string(),
  status: z.enum(queryStatuses),
  spec: z.unknown(),
  specSha256: z.string(),
  engine: z.string(),
  releaseIds: z.array(z.string()).nullable(),
  createdAt: z.string(),
  startedAt: z.string().nullable(),
  finishedAt: z.string().nullable(),
  /** While running: how far the engine got, when it can tell. */
  progress: z.object({ percent: z.number() }).nullable(),
  error: z.object({ message: z.string() }).nullable(),
  /** Null until the query succeeds, and while the airlock holds its result. */
  summary: querySummarySchema.nullable(),
  /** On a dataset with an airlock: whether the result has been released (null: no airlock). */
  review: resultReviewSchema.nullable().optional(),
  /** With a submit that waited for the end: the first page of the result. */
  firstPage: resultPageSchema.optional(),
});
export type QueryJobView = z.infer<typeof queryJobSchema>;

/** A page of query jobs: one's own history, or (for admins) what is queued and running. */
export const queryJobPageSchema = pageOf('queries', queryJobSchema);

/** A download link for an export of a result: signed, bound to its user, and expiring. */
/** What the output checks of an export found (docs/privacy.md). */
export const outputReportSchema = z.object({
  checks: z.array(
    z.object({
      check: z.enum(['row_level', 'small_cells', 'disclosure_control', 'privacy_budget']),
      passed: z.boolean(),
      detail: z.string(),
    }),
  ),
  /** Whether an admin must approve the export before it can be downloaded. */
  needsReview: z.boolean(),
});
export type OutputReport = z.infer<typeof outputReportSchema>;

export const exportLinkSchema = z.object({
  exportId: z.uuid(),
  format: z.enum(['csv', 'parquet']),
  fileName: z.string(),
  bytes: z.number(),
  report: outputReportSchema,
  /** `pending` and `rejected` exports have no link (yet). */
  review: z.enum(['not_needed', 'pending', 'approved', 'rejected']),
  /** Relative to the server; works without a token until it expires. */
  url: z.string().nullable(),
  expiresAt: z.string().nullable(),
});
export type ExportLink = z.infer<typeof exportLinkSchema>;

/** One bin of a histogram in a result: its lower bound, and its count or "<N" when hidden. */
export const histogramBinSchema = z.object({
  bin: z.number(),
  count: z.union([z.number(), z.string()]),
});
export type HistogramBin = z.infer<typeof histogramBinSchema>;

/** What a query would cost of the privacy budget, shown before it runs (docs/privacy.md). */
export const queryCostSchema = z.union([
  z.object({ noisy: z.literal(false) }),
  z.object({
    noisy: z.literal(true),
    /** ε this query costs: nothing when the same answer was given before. */
    cost: z.number(),
    epsilonPerQuery: z.number(),
    /** ε spent by you (or your project) on the dataset in the window, and the budget. */
    spent: z.number(),
    budget: z.number(),
    windowDays: z.number().int(),
    repeat: z.boolean(),
    freesAt: z.string().nullable(),
  }),
]);
export type QueryCost = z.infer<typeof queryCostSchema>;

/** The airlock's queue, for admins. */
export const exportReviewListSchema = z.object({
  exports: z.array(
    z.object({
      id: z.uuid(),
      queryId: z.uuid(),
      userEmail: z.string(),
      format: z.enum(['csv', 'parquet']),
      fileName: z.string(),
      bytes: z.number(),
      report: outputReportSchema,
      createdAt: z.string(),
    }),
  ),
});

/** The airlock's queue of results, for admins: each with its full report. */
export const resultReviewListSchema = z.object({
  results: z.array(
    z.object({
      queryId: z.uuid(),
      dataset: z.string(),
      userEmail: z.string(),
      accessLevel: z.enum(['aggregate', 'row']),
      spec: z.unknown(),
      report: outputReportSchema,
      finishedAt: z.string().nullable(),
    }),
  ),
});

/** An admin's decision on an export in the airlock. */
export const exportReviewSchema = z
  .object({ approve: z.boolean(), reason: z.string().trim().min(5).max(2000) })
  .strict();
