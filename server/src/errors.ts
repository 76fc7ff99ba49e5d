import { statusOf, type ErrorCode } from '@medlake/shared';

export type ErrorDetail = { path: string; message: string };

/**
 * An error the platform expects and can explain to the caller. Its message is shown to the
 * user as it is, so it must never carry patient data or secrets.
 */
export class AppError extends Error {
  readonly code: ErrorCode;
  readonly status: number;
  readonly details: ErrorDetail[] | undefined;

  constructor(code: ErrorCode, message: string, details?: ErrorDetail[]) {
    super(message);
    this.name = 'AppError';
    this.code = code;
    this.status = statusOf(code);
    this.details = details;
  }
}

/**
 * A refusal its use-case has already written to the audit log, with more than the HTTP layer
 * knows (who used a download link, and why it was refused): the refusal hook skips it rather
 * than record it twice.
 */
export class AuditedRefusalError extends AppError {
  constructor(code: ErrorCode, message: string) {
    super(code, message);
    this.name = 'AuditedRefusalError';
  }
}

const audited = new WeakSet<Error>();

/**
 * Marks an error as written to the audit log already by its use-case (a failed sign-in, with
 * its reason), so that the HTTP layer's refusal hook does not record the same event twice.
 */
export function markAudited<E extends Error>(error: E): E {
  audited.add(error);
  return error;
}

export function isAudited(error: Error): boolean {
  return audited.has(error) || error instanceof AuditedRefusalError;
}

/** The codes of a part that cannot be reached or cannot go on (all 503). */
type UnavailableCode = Extract<
  ErrorCode,
  | 'catalog_unavailable'
  | 'store_unavailable'
  | 'engine_unavailable'
  | 'vault_unavailable'
  | 'disk_full'
  | 'out_of_memory'
>;

/** Raised when a part the platform needs (catalog, engine, storage) cannot be reached. */
export class UnavailableError extends AppError {
  constructor(code: UnavailableCode, message: string) {
    super(code, message);
    this.name = 'UnavailableError';
  }
}

/**
 * A write that found the disk full, whether Node reports it (ENOSPC) or an engine does in its
 * message (DuckDB: "No space left on device"), as an error that says so plainly: the engine's
 * own text names files and is not for users.
 */
export function diskFullError(error: unknown, consequence: string): UnavailableError | undefined {
  const full =
    (error as NodeJS.ErrnoException | undefined)?.code === 'ENOSPC' ||
    /no space left on device/i.test(error instanceof Error ? error.message : String(error));
  return full
    ? new UnavailableError(
        'disk_full',
        `the server's disk is full: ${consequence}; an administrator must free space before it is tried again`,
      )
    : undefined;
}

/** `What` not found, under the code of what was looked for (dataset_not_found, …). */
export function notFound(code: Extract<ErrorCode, `${string}_not_found`>, what: string): AppError {
  return new AppError(code, `${what} not found`);
}
