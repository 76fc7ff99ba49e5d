import type { IngestProblem, IngestProblemCode } from '@medlake/shared';
import type { SourceColumn } from '../../ingest/ingest-plan.ts';
import { readProblemMessage } from '../../ingest/ingest-rules.ts';

/** DuckDB's reject error types and the problem each one is. */
export const rejectCodes: Record<string, IngestProblemCode> = {
  CAST: 'invalid_value',
  'MISSING COLUMNS': 'missing_fields',
  'TOO MANY COLUMNS': 'extra_fields',
  'UNQUOTED VALUE': 'unterminated_quote',
  'LINE SIZE OVER MAXIMUM': 'line_too_long',
  'INVALID ENCODING': 'invalid_encoding',
  'INVALID UNICODE': 'invalid_encoding',
};

/**
 * A rejected line as a problem. The message is built from the error type and the expected
 * type only: DuckDB's own message quotes the value, which may identify someone.
 */
export function describeRejectedLine(
  line: number,
  errorType: string,
  source: SourceColumn | undefined,
  columnIndex: bigint | null,
  expectedFields: number,
): IngestProblem {
  const code = rejectCodes[errorType] ?? 'invalid_value';
  const column = source?.position ?? (columnIndex === null ? null : Number(columnIndex));
  const header = source?.header ?? null;
  return {
    code,
    line,
    column,
    header,
    message: readProblemMessage(code, source, expectedFields),
  };
}
