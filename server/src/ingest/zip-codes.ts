import type { IngestDialect } from './ingest-runner.ts';

/** A US ZIP code, with or without its four-digit extension. */
const fiveDigits = '[0-9]{5}(-[0-9]{4})?';
/** A ZIP code that lost its leading zero, as spreadsheets do to 02134. */
const fourDigits = '[0-9]{4}(-[0-9]{4})?';

/**
 * A ZIP column's value as SQL both engines read alike: padded back to five digits where the
 * contract declares five-digit ZIPs and the value lost its leading zero; whether it was padded;
 * and whether it is not a ZIP code, and so stored empty (which the quality report counts, so
 * that no value is emptied unseen).
 */
export function zipSql(
  sql: IngestDialect,
  input: string,
  fiveDigit: boolean,
): { value: string; padded: string; emptied: string } {
  const padded = fiveDigit ? sql.matchesAll(input, fourDigits) : 'false';
  const value = fiveDigit
    ? `CASE WHEN ${padded} THEN concat('0', ${input}) ELSE ${input} END`
    : input;
  return {
    value,
    padded,
    emptied: `(${input} IS NOT NULL AND NOT ${sql.matchesAll(value, fiveDigits)})`,
  };
}

/** Whether a ZIP code (five digits) is one Safe Harbor keeps: its 3-digit area, or 000. */
export function zipIsValidSql(sql: IngestDialect, value: string): string {
  return sql.matchesAll(value, fiveDigits);
}
