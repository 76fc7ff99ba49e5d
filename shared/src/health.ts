import { z } from 'zod';

export const componentStatusSchema = z.object({
  status: z.enum(['ok', 'error']),
  /** Which implementation answered, e.g. "pglite", "postgres", "duckdb", "local". */
  kind: z.string(),
  /** Why a component is failing; never carries credentials or patient data. */
  message: z.string().optional(),
});

export const healthReportSchema = z.object({
  status: z.enum(['ok', 'degraded']),
  version: z.string(),
  components: z.object({
    catalog: componentStatusSchema,
    engine: componentStatusSchema,
    storage: componentStatusSchema,
  }),
  /** When the parts were probed: the server answers from a probe at most a few seconds old. */
  checkedAt: z.string().optional(),
});

/** What /api/health tells an anonymous caller: whether the server works, and nothing else. */
export const healthStatusSchema = z.object({ status: z.enum(['ok', 'degraded']) });
export type HealthStatus = z.infer<typeof healthStatusSchema>;

export type ComponentStatus = z.infer<typeof componentStatusSchema>;
export type HealthReport = z.infer<typeof healthReportSchema>;
