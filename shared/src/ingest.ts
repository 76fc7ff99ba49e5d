import { z } from 'zod';

/** Why a line of an upload was refused. Messages never quote the offending value. */
export const ingestProblemCodes = [
  'empty_file',
  'header_only',
  'invalid_encoding',
  'wrong_delimiter',
  'unknown_column',
  'duplicate_column',
  'missing_column',
  'missing_fields',
  'extra_fields',
  'unterminated_quote',
  'stray_line_break',
  'line_too_long',
  'invalid_value',
  'missing_value',
  'birth_after_event',
  'identifier_in_text',
  'unit_unconvertible',
  'implausible_value',
  'event_outside_window',
] as const;

export type IngestProblemCode = (typeof ingestProblemCodes)[number];

export const ingestProblemSchema = z.object({
  code: z.enum(ingestProblemCodes),
  /** 1-based line in the file (the header is line 1); null when the problem is the whole file. */
  line: z.number().int().nullable(),
  /** 1-based column position in the file's header; null when the problem is the whole line. */
  column: z.number().int().nullable(),
  /** The file's header for that column, when known. */
  header: z.string().nullable(),
  message: z.string(),
});

export type IngestProblem = z.infer<typeof ingestProblemSchema>;

export const codeProfileSchema = z.object({
  code: z.string(),
  label: z.string().nullable(),
  unit: z.string().nullable(),
  count: z.number(),
  numericCount: z.number(),
  min: z.number().nullable(),
  max: z.number().nullable(),
  mean: z.number().nullable(),
  q1: z.number().nullable(),
  median: z.number().nullable(),
  q3: z.number().nullable(),
  /** Numeric values whose unit could not be converted to the code's canonical unit. */
  unconvertible: z.number().optional(),
  /** Numeric values outside the range a living person can have (in the canonical unit). */
  implausible: z.number().optional(),
});

export type CodeProfile = z.infer<typeof codeProfileSchema>;

export const qualityChangeSchema = z.object({
  kind: z.enum(['code_vanished', 'code_appeared', 'distribution_moved', 'row_count_changed']),
  code: z.string().nullable(),
  message: z.string(),
});

export type QualityChange = z.infer<typeof qualityChangeSchema>;

/** The data-quality report stored with every release. */
export const qualityReportSchema = z.object({
  rows: z.number(),
  rejectedRows: z.number(),
  rejectedByReason: z.record(z.string(), z.number()),
  /** The first rejected rows, with line and column. */
  rejectedSamples: z.array(ingestProblemSchema),
  /** Text values emptied because they held an identifier (contracts that redact). */
  redactedValues: z.number(),
  patients: z.number(),
  columns: z.array(z.object({ name: z.string(), nullRate: z.number() })),
  codes: z.array(codeProfileSchema),
  /** Rows whose event date falls outside the month the upload is for. */
  eventsOutsideMonth: z.number(),
  /** Rows whose event date falls outside the contract's eventWindow (contracts that set one). */
  eventsOutsideWindow: z.number().optional(),
  /**
   * ZIP codes of four digits padded back to five (contracts that declare five-digit ZIPs), and
   * values stored empty because they are not a five-digit ZIP code.
   */
  zipCodes: z.object({ padded: z.number(), emptied: z.number() }).optional(),
  /**
   * Units sent that could not be converted to their code's canonical unit, with the numeric
   * values sent in each (contracts with canonical units), most first.
   */
  unconvertibleUnits: z
    .array(z.object({ code: z.string(), unit: z.string().nullable(), values: z.number() }))
    .optional(),
  /** Compared with the hospital's previous month of the same dataset, when there is one. */
  comparedWith: z.object({ releaseId: z.string(), month: z.string() }).nullable(),
  changes: z.array(qualityChangeSchema),
});

export type QualityReport = z.infer<typeof qualityReportSchema>;

/** The answer to an upload: published, unchanged (the same file again), or rejected. */
export const uploadResultSchema = z.discriminatedUnion('status', [
  z.object({
    status: z.literal('published'),
    jobId: z.string(),
    releaseId: z.string(),
    rows: z.number(),
    rejectedRows: z.number(),
    quality: qualityReportSchema,
  }),
  z.object({ status: z.literal('unchanged'), jobId: z.string(), releaseId: z.string() }),
  z.object({
    status: z.literal('rejected'),
    jobId: z.string(),
    fileName: z.string(),
    problems: z.array(ingestProblemSchema),
    problemCount: z.number(),
    rejectedRows: z.number(),
  }),
]);

/** An upload as its steward sees it in the list. */
export const uploadJobSchema = z.object({
  id: z.string(),
  status: z.enum(['running', 'succeeded', 'failed']),
  dataset: z.string(),
  hospital: z.string(),
  month: z.string(),
  fileName: z.string(),
  startedAt: z.string(),
  finishedAt: z.string().nullable(),
  progress: z.unknown(),
  /** Published or unchanged: the release; rejected: the problems with line and column. */
  result: z.unknown(),
  error: z.unknown(),
});

export type UploadResult = z.infer<typeof uploadResultSchema>;
export type UploadJob = z.infer<typeof uploadJobSchema>;

/** A release as a steward sees it in a hospital's history. */
export const releaseViewSchema = z.object({
  id: z.string(),
  dataset: z.string(),
  hospital: z.string(),
  month: z.string(),
  rows: z.number(),
  rejectedRows: z.number(),
  publishedAt: z.string(),
  /** Whether queries read this release for its month (a later upload replaces it). */
  current: z.boolean(),
});

export type ReleaseView = z.infer<typeof releaseViewSchema>;

/** The first rows of a release as the lake holds them: what de-identification made of them. */
export const releasePreviewSchema = z.object({
  releaseId: z.string(),
  rows: z.array(z.record(z.string(), z.unknown())),
});
export type ReleasePreview = z.infer<typeof releasePreviewSchema>;

/** A page of uploads, and the hospitals the caller may upload for. */
export const uploadPageSchema = z.object({
  page: z.number().int(),
  pageSize: z.number().int(),
  total: z.number(),
  /** The hospitals you may upload for. */
  hospitals: z.array(z.string()),
  uploads: z.array(uploadJobSchema),
});

/** One upload with the data-quality report of its release, once published. */
export const uploadDetailsSchema = uploadJobSchema.extend({
  quality: qualityReportSchema.nullable(),
});

export const releasePageSchema = z.object({
  total: z.number(),
  releases: z.array(releaseViewSchema),
});

const mebibyte = 1024 * 1024;

/**
 * Starting an upload in parts: what it is for and how large it is. Parts are `partBytes`
 * long (64 MiB by default), the last one shorter; S3's limits apply on every store.
 */
export const newUploadSessionSchema = z.object({
  dataset: z.string().min(1),
  hospital: z.string().min(1),
  month: z.string().regex(/^\d{4}-(0[1-9]|1[0-2])$/, 'must be YYYY-MM'),
  fileName: z.string().min(1).max(255).default('upload.csv'),
  bytes: z.number().int().positive(),
  partBytes: z
    .number()
    .int()
    .min(5 * mebibyte)
    .max(5 * 1024 * mebibyte)
    .default(64 * mebibyte),
});

/** Where part n (from 1) of a file sent in parts starts, and how long it is. */
export function partRange(
  upload: { bytes: number; partBytes: number },
  partNumber: number,
): { start: number; length: number } {
  const start = (partNumber - 1) * upload.partBytes;
  return { start, length: Math.max(0, Math.min(upload.partBytes, upload.bytes - start)) };
}

export const uploadSessionSchema = z.object({
  id: z.string(),
  status: z.enum(['open', 'completed', 'aborted']),
  dataset: z.string(),
  hospital: z.string(),
  month: z.string(),
  fileName: z.string(),
  bytes: z.number(),
  partBytes: z.number(),
  /** How many parts the file is sent in. */
  parts: z.number(),
  /** The parts that have arrived whole, by number (from 1): after a dropped connection, send the others. */
  arrived: z.array(z.number()),
  /** The ingest job, once the upload is completed. */
  jobId: z.string().nullable(),
});

export type UploadSessionView = z.infer<typeof uploadSessionSchema>;

/** Where to PUT one part's bytes: the bucket itself (presigned), or the medlake server. */
export const partTargetSchema = z.object({
  method: z.literal('PUT'),
  url: z.string(),
  expiresAt: z.string(),
});
