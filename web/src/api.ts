import {
  errorBodySchema,
  type HealthReport,
  healthReportSchema,
  type HealthStatus,
  healthStatusSchema,
} from '@medlake/shared';
import type { z } from 'zod';

/** An answer other than 2xx, with the API's error code and the fields it names. */
export class ApiError extends Error {
  readonly status: number;
  readonly code: string;
  readonly details: ReadonlyArray<{ path: string; message: string }>;

  constructor(
    status: number,
    message: string,
    code = 'internal',
    details: ReadonlyArray<{ path: string; message: string }> = [],
  ) {
    super(message);
    this.status = status;
    this.code = code;
    this.details = details;
  }

  /** The message for one field of a form, if the server named it. */
  detailFor(path: string): string | undefined {
    return this.details.find((detail) => detail.path === path || detail.path === `/${path}`)
      ?.message;
  }
}

/**
 * The session's CSRF token: sent with every write, as the server asks of cookie sessions. It
 * lives in memory only; a reload asks the server for it again.
 */
let csrfToken: string | null = null;

export function setCsrfToken(token: string | null): void {
  csrfToken = token;
}

/** For requests made without `api` (an upload with progress). */
export function currentCsrfToken(): string | null {
  return csrfToken;
}

/**
 * Calls the API and parses the answer with the shared schema for it: the browser and the
 * server agree on every shape through `shared/`.
 */
export async function api<T extends z.ZodType>(
  schema: T,
  method: 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE',
  path: string,
  body?: unknown,
): Promise<z.infer<T>> {
  const headers: Record<string, string> = { accept: 'application/json' };
  if (body !== undefined) headers['content-type'] = 'application/json';
  if (method !== 'GET' && csrfToken) headers['x-csrf-token'] = csrfToken;
  const response = await fetch(path, {
    method,
    headers,
    credentials: 'same-origin',
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const payload: unknown = response.status === 204 ? null : await response.json().catch(() => null);
  if (!response.ok) throw apiErrorOf(response.status, payload);
  return schema.parse(payload);
}

/** The error an answer other than 2xx carries, with its code and the fields it names. */
export function apiErrorOf(status: number, payload: unknown): ApiError {
  const error = errorBodySchema.safeParse(payload);
  if (!error.success) return new ApiError(status, `The server answered ${status}; try again`);
  const { code, message, details } = error.data.error;
  return new ApiError(status, message, code, details ?? []);
}

/** Reads the platform's health; a 503 still carries a report, which says what is failing. */
/** The health report: in full for an admin, else whether the server works. */
export async function fetchHealth(): Promise<HealthReport | HealthStatus> {
  const response = await fetch('/api/health', { headers: { accept: 'application/json' } });
  const body: unknown = await response.json().catch(() => undefined);
  const report = healthReportSchema.or(healthStatusSchema).safeParse(body);
  if (report.success) return report.data;
  const error = errorBodySchema.safeParse(body);
  throw new ApiError(
    response.status,
    error.success ? error.data.error.message : `The server answered ${response.status}`,
  );
}

/** A message for a failure, saying what to do next where we can. */
export function messageOf(error: unknown): string {
  if (error instanceof ApiError) return error.message;
  return 'The server could not be reached. Check your connection and try again.';
}

/**
 * A form's errors from a failed request: each at the field the server named (`/email`,
 * `name`), in the server's words, and the message as a whole only when no field holds it.
 */
export function fieldErrors<Helper>(error: unknown, fields: readonly string[]) {
  const apiError = error instanceof ApiError ? error : undefined;
  const at = (path: string, helper?: Helper) => {
    const message = apiError?.detailFor(path);
    return { error: Boolean(message), helperText: message ?? helper };
  };
  const placed = apiError !== undefined && fields.some((field) => apiError.detailFor(field));
  return { at, general: error && !placed ? messageOf(error) : undefined };
}
