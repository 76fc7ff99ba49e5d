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

export type ComponentStatus = z.infer<typeof componentStatusSchema>;
export type HealthReport = z.infer<typeof healthReportSchema>;
