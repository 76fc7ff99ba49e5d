import { errorBodySchema, type HealthReport, healthReportSchema } from '@medlake/shared';

export class ApiError extends Error {
  readonly status: number;

  constructor(status: number, message: string) {
    super(message);
    this.status = status;
  }
}

/** Reads the platform's health; a 503 still carries a report, which says what is failing. */
export async function fetchHealth(): Promise<HealthReport> {
  const response = await fetch('/api/health', { headers: { accept: 'application/json' } });
  const body: unknown = await response.json().catch(() => undefined);
  const report = healthReportSchema.safeParse(body);
  if (report.success) return report.data;
  const error = errorBodySchema.safeParse(body);
  throw new ApiError(
    response.status,
    error.success ? error.data.error.message : `The server answered ${response.status}`,
  );
}
