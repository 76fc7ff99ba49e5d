import type { IngestProblem, IngestProblemCode, SourceType } from '@medlake/shared';
import type { SourceColumn } from '../../ingest/ingest-plan.ts';

const typeWords: Record<SourceType, string> = {
  varchar: 'text',
  integer: 'a whole number',
  double: 'a number',
  boolean: 'true or false',
  date: 'a date (YYYY-MM-DD)',
  timestamp: 'a date and time (ISO 8601, e.g. 2024-01-31T08:15:00Z)',
};

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
    message: rejectMessage(code, source, header, expectedFields),
  };
}

function rejectMessage(
  code: IngestProblemCode,
  source: SourceColumn | undefined,
  header: string | null,
  expectedFields: number,
): string {
  switch (code) {
    case 'missing_fields':
      return `the line has fewer fields than the header's ${expectedFields}`;
    case 'extra_fields':
      return `the line has more fields than the header's ${expectedFields}`;
    case 'unterminated_quote':
      return 'a quoted value is not closed, or a quote stands inside an unquoted value';
    case 'line_too_long':
      return 'the line is longer than the reader accepts';
    case 'invalid_encoding':
      return 'the line is not valid UTF-8; export the file as UTF-8';
    default:
      return `${header ?? 'a value'} is not ${typeWords[source?.readAs ?? 'varchar']}`;
  }
}

/**
 * The line of the record'th accepted row (0-based), given the lines of rejected records: the
 * header is line 1 and every record takes one line, so each rejected line before it pushes it
 * down by one.
 */
export function lineOfRecord(record: number, rejectedLines: readonly number[]): number {
  let line = record + 2;
  for (const rejected of rejectedLines) {
    if (rejected <= line) line += 1;
    else break;
  }
  return line;
}
