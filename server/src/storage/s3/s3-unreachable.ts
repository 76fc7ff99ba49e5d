import type { S3Client } from '@aws-sdk/client-s3';
import { UnavailableError } from '../../errors.ts';

/** What Node or the SDK's HTTP handler says when a server cannot be reached or breaks off. */
const unreachableCodes = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'ENOTFOUND',
  'EPIPE',
  'ETIMEDOUT',
  'EAI_AGAIN',
  'TimeoutError',
  'RequestTimeout',
]);

/** Whether an SDK error means S3 did not answer at all, or answered only with server errors. */
export function isUnreachable(error: unknown): boolean {
  const failure = error as {
    code?: string;
    name?: string;
    $metadata?: { httpStatusCode?: number };
  };
  const status = failure.$metadata?.httpStatusCode;
  // 501 and the like are answers: S3 does not support what was asked.
  if (status !== undefined) return [500, 502, 503, 504].includes(status);
  return unreachableCodes.has(failure.code ?? '') || unreachableCodes.has(failure.name ?? '');
}

/**
 * Makes every command of the client that fails because S3 cannot be reached — after the SDK's
 * own retries, since this wraps them — fail with an UnavailableError that names the store,
 * which the API answers with 503 and the user can act on, instead of the SDK's socket error.
 */
export function reportUnreachableStore(client: S3Client, where: string): void {
  client.middlewareStack.add(
    (next) => async (args) => {
      try {
        return await next(args);
      } catch (error) {
        if (!isUnreachable(error)) throw error;
        throw unreachableStoreError(
          where,
          (error as { code?: string }).code ?? (error as Error).name,
        );
      }
    },
    { step: 'initialize', name: 'medlakeUnreachableStore' },
  );
}

/** The one message for an S3 store that does not answer, whoever found out. */
export function unreachableStoreError(where: string, reason: string): UnavailableError {
  return new UnavailableError(
    'store_unavailable',
    `The S3 store at ${where} cannot be reached (${reason}); try again once it answers`,
  );
}

/**
 * DuckDB's httpfs reports a connection that failed or broke off as an IO or HTTP error naming
 * the method and the object's URL: the engines turn it into the store's own message.
 */
export function isUnreachableFromDuckDb(error: unknown): boolean {
  const message = error instanceof Error ? error.message : String(error);
  return (
    /^(IO|HTTP) Error:/.test(message) &&
    /(Could not establish connection|Failure when receiving data|Failure when sending data|Connection refused|Connection reset|Timeout was reached|error for HTTP (HEAD|GET|PUT|POST|DELETE) to|HTTP 5\d\d)/i.test(
      message,
    )
  );
}
