import type { ContractColumn, IngestProblemCode, SourceType } from '@medlake/shared';
import type { IngestPlan, SourceColumn } from './ingest-plan.ts';
import { unitColumnsOf, type UnitColumns } from './unit-step.ts';
import type { IngestOutcome } from './ingest-types.ts';

/**
 * The rules of ingestion that do not depend on the engine: which columns are kept, which rows
 * are checked for what, and how a problem is worded. The pipeline (ingest-pipeline.ts) writes
 * them in each engine's dialect, so that DuckDB and Spark reject, redact and describe the same
 * rows the same way.
 */

/** Identifier patterns looked for in free text; the syntax is common to RE2 and Java. */
const identifierPatterns = {
  'a social security number': String.raw`\b\d{3}-\d{2}-\d{4}\b`,
  'a phone number': String.raw`(^|[^\d])\(?\d{3}\)?[ .-]?\d{3}[ .-]\d{4}([^\d]|$)`,
  'an e-mail address': String.raw`[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}`,
} as const;

/** Names shorter than this are too likely to be ordinary words to count as a hit. */
export const minimumNameLength = 3;
/** Other identifiers shorter than this are too likely to occur in any text by chance. */
const minimumIdentifierLength = 5;

/** What a problem does to its row: leave it out, empty the offending value, or fail the file. */
export type ProblemAction = 'reject' | 'redact' | 'reject_file';

/** Identifiers made of words (names, places), which free text is searched for word by word. */
function isWordIdentifier(column: ContractColumn): boolean {
  return (
    column.role === 'direct_identifier' &&
    (column.identifies === 'name' || column.identifies === 'city')
  );
}

/** Text that reaches the lake, and so must be free of identifiers: free text, text results. */
export type ScannedText = {
  source: SourceColumn;
  /** Only the values that stay text: a text result's numbers are not scanned. */
  numbersExcluded: boolean;
  action: ProblemAction;
};

/** The name of a file's column in the engines' SQL: by position, so no header text reaches SQL. */
export function columnAlias(source: SourceColumn): string {
  return `c${source.position}`;
}

/**
 * A scanned column's text, as SQL both engines read alike: for a text result, only the values
 * that are not numbers.
 */
export function scannedTextSql(scanned: ScannedText): string {
  const column = columnAlias(scanned.source);
  return scanned.numbersExcluded
    ? `CASE WHEN TRY_CAST(${column} AS DOUBLE) IS NULL THEN ${column} END`
    : column;
}

/**
 * A check of accepted rows that a type cast cannot express. The pipeline writes `kind` as SQL;
 * `position` is the column the problem is reported at.
 */
export type RowRule = {
  position: number;
  code: IngestProblemCode;
  message: string;
  action: ProblemAction;
} & (
  | { kind: 'missing'; column: SourceColumn }
  | { kind: 'birth_after_event'; birth: SourceColumn; reference: SourceColumn }
  | { kind: 'pattern'; text: ScannedText; pattern: string }
  /** The text holds one of its own row's identifiers (the engine flags these while reading). */
  | { kind: 'own_identifier'; text: ScannedText }
  /** The text holds, as a word, a name or place of any patient in the upload. */
  | { kind: 'patient_name'; text: ScannedText }
  /** A number sent in a unit that does not convert to its code's canonical unit. */
  | { kind: 'unit_unconvertible' }
  /** A number outside the range a living person can have, in its code's canonical unit. */
  | { kind: 'implausible_value' }
  /** The reference event date lies outside the contract's window: `when` says so in SQL. */
  | { kind: 'event_outside_window'; when: string }
);

/** The ingest rules of one plan. */
export class IngestRules {
  readonly plan: IngestPlan;
  /** The file's columns, in order. */
  readonly source: SourceColumn[];
  /**
   * The columns an engine keeps after reading. Columns that are dropped unseen are still
   * parsed (the row must be well-formed) but never kept; names are kept only to look for them
   * in other rows' free text.
   */
  readonly kept: SourceColumn[];
  /** Text columns scanned for identifiers. */
  readonly scanned: ScannedText[];
  /** Identifiers compared with the text of their own row (ids, addresses, numbers). */
  readonly ownIdentifiers: SourceColumn[];
  /** Kept name and place columns, whose words are looked for in every row's text. */
  readonly nameColumns: SourceColumn[];
  /** The measure converted to canonical units, and the columns that tell how. */
  readonly units: UnitColumns | undefined;

  constructor(plan: IngestPlan) {
    this.plan = plan;
    this.source = plan.source;
    this.scanned = this.source.flatMap((source): ScannedText[] => {
      const column = source.column;
      if (column?.role === 'free_text' && column.allowed) {
        return [{ source, numbersExcluded: false, action: problemActions[column.onIdentifier] }];
      }
      if (column?.role === 'measure' && column.allowText) {
        return [{ source, numbersExcluded: true, action: problemActions[column.onIdentifier] }];
      }
      return [];
    });
    const needsNames = this.scanned.length > 0;
    this.kept = this.source.filter((source) => {
      const column = source.column;
      if (!column) return false;
      if (column.role === 'direct_identifier') {
        return column.action === 'pseudonymize' || (needsNames && isWordIdentifier(column));
      }
      if (column.role === 'free_text') return column.allowed;
      return true;
    });
    // Names and places are matched as whole words against every patient; a substring test
    // would flag "Sam" in "sample". Longer identifiers (addresses, numbers) are matched
    // anywhere in their own row's text.
    this.ownIdentifiers = needsNames
      ? this.source.filter(
          (source) =>
            source.column?.role === 'patient_id' ||
            (source.column?.role === 'direct_identifier' && !isWordIdentifier(source.column)),
        )
      : [];
    this.nameColumns = this.kept.filter(
      (source) => source.column?.role === 'direct_identifier' && isWordIdentifier(source.column),
    );
    this.units = unitColumnsOf(this.kept);
  }

  /**
   * For each scanned text column, whether its text contains one of the row's own identifiers
   * (the patient's id, address, phone …), as `hit_<position>` columns of SQL both engines
   * read alike. Engines compute these while reading, so that the identifier columns are
   * compared and dropped without ever being stored.
   */
  ownIdentifierFlagsSql(): string[] {
    if (this.ownIdentifiers.length === 0) return [];
    return this.scanned.map((scanned) => {
      const text = scannedTextSql(scanned);
      const checks = this.ownIdentifiers.map((identifier) => {
        const value = columnAlias(identifier);
        return `(length(${value}) >= ${minimumIdentifierLength} AND contains(lower(${text}), lower(${value})))`;
      });
      // Most rows have no text: test that first, so the comparisons run only where it matters.
      return `CASE WHEN ${text} IS NULL THEN false ELSE coalesce(${checks.join(' OR ')}, false) END AS hit_${scanned.source.position}`;
    });
  }

  /** The kept columns of a role, in file order. */
  byRole(role: ContractColumn['role']): SourceColumn[] {
    return this.kept.filter((source) => source.column?.role === role);
  }

  /** The patient id column; a plan always has one. */
  patient(): SourceColumn {
    const patient = this.byRole('patient_id')[0];
    if (!patient) throw new Error('the plan has no patient_id column');
    return patient;
  }

  /** The date ages are computed at: the marked reference, else the first event date. */
  ageReference(): SourceColumn | undefined {
    const events = this.byRole('event_date');
    return (
      events.find((source) => source.column?.role === 'event_date' && source.column.ageReference) ??
      events[0]
    );
  }

  /**
   * Whether a row's reference event date lies outside the contract's window, as SQL both
   * engines read alike; undefined without a window or an event date.
   */
  outsideWindowSql(): string | undefined {
    const window = this.plan.contract.eventWindow;
    const reference = this.ageReference();
    if (!window || !reference) return undefined;
    const [year, month] = this.plan.month.split('-').map(Number) as [number, number];
    const first = new Date(Date.UTC(year, month - 1 - window.monthsBack, 1));
    const date = `CAST(${columnAlias(reference)} AS DATE)`;
    return `(${date} < DATE '${first.toISOString().slice(0, 10)}' OR ${date} > DATE '${this.monthEnd()}')`;
  }

  /** The last day of the upload's month, as YYYY-MM-DD: the age reference of rows without one. */
  monthEnd(): string {
    const [year, month] = this.plan.month.split('-').map(Number) as [number, number];
    return new Date(Date.UTC(year, month, 0)).toISOString().slice(0, 10);
  }

  /** The checks of accepted rows, in the order their problems are reported. */
  rowRules(): RowRule[] {
    const rules: RowRule[] = [];
    for (const source of this.kept) {
      const column = source.column;
      if (column && (column.required || column.role === 'patient_id')) {
        rules.push({
          kind: 'missing',
          column: source,
          position: source.position,
          code: 'missing_value',
          message: `${column.name} is required but empty`,
          action: 'reject',
        });
      }
    }
    const birth = this.byRole('birth_date')[0];
    const reference = this.ageReference();
    if (birth && reference) {
      rules.push({
        kind: 'birth_after_event',
        birth,
        reference,
        position: birth.position,
        code: 'birth_after_event',
        message: `the birth date is after ${reference.column?.name}`,
        action: 'reject',
      });
    }
    const outside = this.outsideWindowSql();
    if (outside && reference && this.plan.contract.eventWindow?.outside === 'reject_row') {
      rules.push({
        kind: 'event_outside_window',
        when: outside,
        position: reference.position,
        code: 'event_outside_window',
        message: `${reference.column?.name ?? reference.header} is outside the months this upload may hold (${this.plan.month}${this.plan.contract.eventWindow.monthsBack > 0 ? ` and the ${this.plan.contract.eventWindow.monthsBack} before it` : ''})`,
        action: 'reject',
      });
    }
    rules.push(...this.#unitRules());
    for (const text of this.scanned) {
      const name = text.source.column?.name ?? text.source.header;
      const common = {
        text,
        position: text.source.position,
        code: 'identifier_in_text',
        action: text.action,
      } as const;
      for (const [what, pattern] of Object.entries(identifierPatterns)) {
        rules.push({
          ...common,
          kind: 'pattern',
          pattern,
          message: `${name} looks like it holds ${what}`,
        });
      }
      if (this.ownIdentifiers.length > 0) {
        rules.push({
          ...common,
          kind: 'own_identifier',
          message: `${name} holds one of the row's own identifiers`,
        });
      }
      if (this.nameColumns.length > 0) {
        rules.push({
          ...common,
          kind: 'patient_name',
          message: `${name} holds a name or place of a patient in this upload`,
        });
      }
    }
    return rules;
  }

  /** The rules of canonical units that the contract makes reject rows. */
  #unitRules(): RowRule[] {
    const units = this.units;
    if (!units) return [];
    const measure = units.measure.column?.name ?? units.measure.header;
    const rules: RowRule[] = [];
    if (units.onUnconvertible === 'reject_row') {
      rules.push({
        kind: 'unit_unconvertible',
        position: (units.unit ?? units.measure).position,
        code: 'unit_unconvertible',
        message: `the unit of ${measure} is missing, not UCUM, or does not convert to the canonical unit of its code`,
        action: 'reject',
      });
    }
    if (units.onImplausible === 'reject_row') {
      rules.push({
        kind: 'implausible_value',
        position: units.measure.position,
        code: 'implausible_value',
        message: `${measure} is outside the range a living person can have for its code`,
        action: 'reject',
      });
    }
    return rules;
  }
}

const problemActions = {
  reject_row: 'reject',
  reject_file: 'reject_file',
  redact_value: 'redact',
} as const;

/** The outcome of a file with a header and no rows. */
export const headerOnly: IngestOutcome = {
  status: 'rejected',
  problems: [
    {
      code: 'header_only',
      line: 2,
      column: null,
      header: null,
      message: 'the file has a header but no rows',
    },
  ],
  problemCount: 1,
  rejectedRows: 0,
};

/** Whether a file fails, from its counts; the rules are the contract's, not the engine's. */
export function failureOf(
  plan: IngestPlan,
  counts: { accepted: number; rejectedRows: number; semanticRows: number; fatal: number },
): 'header_only' | 'rejected' | undefined {
  if (counts.accepted === 0 && counts.rejectedRows === 0) return 'header_only';
  const tooMany = counts.rejectedRows > plan.contract.maxRejectedRows;
  const nothingLeft = counts.accepted - counts.semanticRows <= 0;
  return tooMany || nothingLeft || counts.fatal > 0 ? 'rejected' : undefined;
}

const typeWords: Record<SourceType, string> = {
  varchar: 'text',
  integer: 'a whole number',
  double: 'a number',
  boolean: 'true or false',
  date: 'a date (YYYY-MM-DD)',
  timestamp: 'a date and time (ISO 8601, e.g. 2024-01-31T08:15:00Z)',
};

/**
 * How a line the reader refused is described: from the kind of problem and the expected type
 * only, never from the value, which may identify someone.
 */
export function readProblemMessage(
  code: IngestProblemCode,
  source: SourceColumn | undefined,
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
    case 'stray_line_break':
      return 'a line break outside quotes differs from the file’s others (a carriage return where lines end in a line feed, or the other way round); export the file with one kind of line break';
    case 'invalid_encoding':
      return 'the line is not valid UTF-8; export the file as UTF-8';
    default:
      return `${source?.header ?? 'a value'} is not ${typeWords[source?.readAs ?? 'varchar']}`;
  }
}

/**
 * The line of the record'th record (0-based), given the lines of records not counted: the
 * header is line 1 and every record takes one line, so each uncounted line before it pushes it
 * down by one. The fallback where the file cannot be read again as CSV.
 */
export function lineOfRecord(record: number, uncountedLines: readonly number[] = []): number {
  let line = record + 2;
  for (const uncounted of uncountedLines) {
    if (uncounted <= line) line += 1;
    else break;
  }
  return line;
}

/** Added to the message of a problem whose line is only estimated. */
export const approximateLine = ' (the line number is approximate)';
