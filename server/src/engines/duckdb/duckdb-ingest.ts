import { mkdir } from 'node:fs/promises';
import { DuckDBInstance, type DuckDBConnection } from '@duckdb/node-api';
import {
  lakeColumns,
  type ContractColumn,
  type IngestProblem,
  type IngestProblemCode,
  type SourceType,
} from '@medlake/shared';
import type { SourceColumn } from '../../ingest/ingest-plan.ts';
import { locateRecords } from '../../ingest/locate-records.ts';
import type {
  EngineOptions,
  IngestEngine,
  IngestOutcome,
  IngestPhase,
  IngestRequest,
} from '../types.ts';
import { describeRejectedLine, lineOfRecord, rejectCodes } from './ingest-problems.ts';
import { lockDown, progressTracking, quoteIdentifier, quoteLiteral } from './duckdb-sql.ts';

/** The DuckDB type each contract source type is read as. */
export const duckTypes: Record<SourceType, string> = {
  varchar: 'VARCHAR',
  integer: 'BIGINT',
  double: 'DOUBLE',
  boolean: 'BOOLEAN',
  date: 'DATE',
  timestamp: 'TIMESTAMP',
};

/** Identifier patterns looked for in free text. RE2 syntax, as DuckDB uses. */
const identifierPatterns = {
  'a social security number': String.raw`\b\d{3}-\d{2}-\d{4}\b`,
  'a phone number': String.raw`(^|[^\d])\(?\d{3}\)?[ .-]?\d{3}[ .-]\d{4}([^\d]|$)`,
  'an e-mail address': String.raw`[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}`,
} as const;

/** Names shorter than this are too likely to be ordinary words to count as a hit. */
const minimumNameLength = 3;
/** Other identifiers shorter than this are too likely to occur in any text by chance. */
const minimumIdentifierLength = 5;

/** Identifiers made of words (names, places), which free text is searched for word by word. */
function isWordIdentifier(column: ContractColumn): boolean {
  return (
    column.role === 'direct_identifier' &&
    (column.identifies === 'name' || column.identifies === 'city')
  );
}

export type DuckDbIngestOptions = EngineOptions & {
  /** DuckDB's memory limit for one ingest, e.g. "1GB"; beyond it DuckDB spills to disk. */
  memoryLimit: string;
};

/**
 * Ingest on DuckDB, in three passes over the data:
 * 1. read the CSV once into a temporary table, typed by the contract; DuckDB's reject tables
 *    give line and column for every structural or type error;
 * 2. check rows (required values, impossible dates, identifiers in free text) and look up
 *    pseudonyms for the distinct patient ids;
 * 3. write the de-identified columns to Parquet, joined with the pseudonyms.
 * Real identifiers exist only in this instance's memory and its spill directory, which the
 * caller deletes afterwards.
 */
export function createDuckDbIngestEngine(options: DuckDbIngestOptions): IngestEngine {
  return {
    kind: 'duckdb',
    async ingest(request) {
      await mkdir(options.tempDirectory, { recursive: true });
      const instance = await DuckDBInstance.create(':memory:');
      const connection = await instance.connect();
      try {
        await lockDown(connection, {
          ...options,
          extra: [`SET memory_limit = ${quoteLiteral(options.memoryLimit)}`, ...progressTracking],
        });
        return await new IngestRun(connection, request).run();
      } finally {
        connection.closeSync();
        instance.closeSync();
      }
    },
  };
}

/** What a problem does to its row: leave it out, empty the offending value, or fail the file. */
type ProblemAction = 'reject' | 'redact' | 'reject_file';

type RowCheck = {
  /** The staged row's id in the FROM clause of `condition`; `rowid` unless it is a join. */
  record?: string;
  position: number;
  code: IngestProblemCode;
  condition: string;
  message: string;
  action: ProblemAction;
};

class IngestRun {
  readonly #connection: DuckDBConnection;
  readonly #request: IngestRequest;
  readonly #source: SourceColumn[];
  readonly #kept: SourceColumn[];
  readonly #byRole: (role: ContractColumn['role']) => SourceColumn[];
  /** Rows left out, and the first problems, for the quality report of a published file. */
  #rejected: { rows: number; problems: IngestProblem[] } = { rows: 0, problems: [] };
  /** Whether any staged row is left out, and which columns have values to empty: when none,
   * the write skips those joins, which cost time on every row. */
  #skipsRows = false;
  #redactedPositions = new Set<number>();

  constructor(connection: DuckDBConnection, request: IngestRequest) {
    this.#connection = connection;
    this.#request = request;
    this.#source = request.plan.source;
    const needsNames = this.#scannedTextColumns().length > 0;
    // Columns that are dropped unseen are still parsed (the row must be well-formed) but never
    // kept in memory; names are kept only to look for them in other rows' free text.
    this.#kept = this.#source.filter((source) => {
      const column = source.column;
      if (!column) return false;
      if (column.role === 'direct_identifier') {
        return column.action === 'pseudonymize' || (needsNames && isWordIdentifier(column));
      }
      if (column.role === 'free_text') return column.allowed;
      return true;
    });
    this.#byRole = (role) => this.#kept.filter((source) => source.column?.role === role);
  }

  async run(): Promise<IngestOutcome> {
    await this.#stage();
    await this.#checkRows();
    const failure = await this.#failureIfAny();
    if (failure) return failure;
    await this.#loadPseudonyms();
    await this.#write();
    return { status: 'written', profile: await this.#profile() };
  }

  /** Pass 1: the CSV into a typed temporary table; bad lines go to DuckDB's reject tables. */
  async #stage(): Promise<void> {
    const columns = this.#source
      .map(
        (source) =>
          `${quoteLiteral(this.#alias(source))}: ${quoteLiteral(duckTypes[source.readAs])}`,
      )
      .join(', ');
    const delimiter = this.#request.plan.contract.delimiter;
    const selected = [
      ...this.#kept.map((source) => this.#alias(source)),
      ...this.#sameRowHitFlags(),
    ].join(', ');
    await this.#timed(
      'reading',
      `
      CREATE TEMP TABLE staged AS
      SELECT ${selected}
      FROM read_csv(${quoteLiteral(this.#request.source)},
        header = true, auto_detect = false, columns = {${columns}},
        delim = ${quoteLiteral(delimiter)}, quote = '"', escape = '"', encoding = 'utf-8',
        strict_mode = true, null_padding = false, parallel = true,
        store_rejects = true, rejects_table = 'rejected_lines', rejects_scan = 'rejected_scans')`,
    );
  }

  /**
   * For each scanned text column, whether its text contains one of the row's own identifiers
   * (the patient's id, name, address, phone …). Computed while reading, so that the identifier
   * columns are compared and dropped without ever being stored.
   */
  #sameRowHitFlags(): string[] {
    // Names and places are matched as whole words against every patient (below); a substring
    // test would flag "Sam" in "sample". Longer identifiers (addresses, numbers) are matched
    // anywhere in their own row's text.
    const identifiers = this.#source.filter(
      (source) =>
        source.column?.role === 'patient_id' ||
        (source.column?.role === 'direct_identifier' && !isWordIdentifier(source.column)),
    );
    if (identifiers.length === 0) return [];
    return this.#scannedTextColumns().map(({ source, text }) => {
      const checks = identifiers.map((identifier) => {
        const value = this.#alias(identifier);
        return `(length(${value}) >= ${minimumIdentifierLength} AND contains(lower(${text}), lower(${value})))`;
      });
      // Most rows have no text: test that first, so the comparisons run only where it matters.
      return `CASE WHEN ${text} IS NULL THEN false ELSE coalesce(${checks.join(' OR ')}, false) END AS hit_${source.position}`;
    });
  }

  /** Pass 2a: row rules that a type cast cannot express. */
  async #checkRows(): Promise<void> {
    const checks: RowCheck[] = [];
    for (const source of this.#kept) {
      const column = source.column;
      if (column && (column.required || column.role === 'patient_id')) {
        checks.push({
          position: source.position,
          code: 'missing_value',
          condition: `staged WHERE ${this.#alias(source)} IS NULL`,
          message: `${column.name} is required but empty`,
          action: 'reject',
        });
      }
    }
    const birth = this.#byRole('birth_date')[0];
    const reference = this.#ageReference();
    if (birth && reference) {
      checks.push({
        position: birth.position,
        code: 'birth_after_event',
        condition: `staged WHERE ${this.#alias(birth)} > CAST(${this.#alias(reference)} AS DATE)`,
        message: `the birth date is after ${reference.column?.name}`,
        action: 'reject',
      });
    }

    checks.push(...(await this.#textScans()));
    const parts = checks.map(
      (check) =>
        `SELECT DISTINCT ${check.record ?? 'rowid'} AS record, ${check.position} AS position, '${check.code}' AS code, ${quoteLiteral(check.message)} AS message, '${check.action}' AS action FROM ${check.condition}`,
    );
    const union =
      parts.length > 0
        ? parts.join('\nUNION ALL\n')
        : 'SELECT NULL::BIGINT AS record, NULL::INTEGER AS position, NULL AS code, NULL AS message, NULL AS action WHERE false';
    await this.#timed('checking', `CREATE TEMP TABLE row_problems AS ${union}`);
  }

  /**
   * Text that reaches the lake and holds an identifier: one of its own row's identifiers, a
   * name of any patient in the upload, or something shaped like an SSN, phone number or e-mail.
   */
  async #textScans(): Promise<RowCheck[]> {
    const scanned = this.#scannedTextColumns();
    if (scanned.length === 0) return [];
    const nameColumns = this.#kept.filter(
      (source) => source.column?.role === 'direct_identifier' && isWordIdentifier(source.column),
    );
    if (nameColumns.length > 0) {
      const values = nameColumns
        .map((source) => `SELECT ${this.#alias(source)} AS value FROM staged`)
        .join(' UNION ALL ');
      await this.#connection.run(`
        CREATE TEMP TABLE upload_names AS
        SELECT DISTINCT token AS name FROM (
          SELECT unnest(regexp_split_to_array(lower(value), '[^[:alnum:]]+')) AS token FROM (${values})
        ) WHERE length(token) >= ${minimumNameLength}`);
    }
    const hasSameRowFlags = this.#sameRowHitFlags().length > 0;
    return scanned.flatMap(({ source, text, action }): RowCheck[] => {
      const name = source.column?.name ?? source.header;
      const check = (condition: string, what: string, record?: string): RowCheck => ({
        record,
        position: source.position,
        code: 'identifier_in_text',
        condition,
        message: `${name} ${what}`,
        action,
      });
      const checks = Object.entries(identifierPatterns).map(([what, pattern]) =>
        check(
          `staged WHERE regexp_matches(${text}, ${quoteLiteral(pattern)})`,
          `looks like it holds ${what}`,
        ),
      );
      if (hasSameRowFlags) {
        checks.push(
          check(`staged WHERE hit_${source.position}`, "holds one of the row's own identifiers"),
        );
      }
      if (nameColumns.length > 0) {
        checks.push(
          check(
            `(SELECT rowid AS row_id, unnest(regexp_split_to_array(lower(${text}), '[^[:alnum:]]+')) AS token FROM staged WHERE ${text} IS NOT NULL) t JOIN upload_names n ON t.token = n.name`,
            'holds a name or place of a patient in this upload',
            't.row_id',
          ),
        );
      }
      return checks;
    });
  }

  /** Decides whether the file fails, and if so with which problems. */
  async #failureIfAny(): Promise<IngestOutcome | undefined> {
    const contract = this.#request.plan.contract;
    const [counts] = await this.#rows<{
      accepted: bigint;
      structural: bigint;
      semantic: bigint;
      fatal: bigint;
    }>(`
      SELECT
        (SELECT count(*) FROM staged) AS accepted,
        (SELECT count(DISTINCT line) FROM rejected_lines) AS structural,
        (SELECT count(DISTINCT record) FROM row_problems WHERE action <> 'redact') AS semantic,
        (SELECT count(*) FROM row_problems WHERE action = 'reject_file') AS fatal`);
    const accepted = Number(counts?.accepted ?? 0);
    const rejectedRows = Number(counts?.structural ?? 0) + Number(counts?.semantic ?? 0);
    const problems = await this.#problems(this.#request.maxReportedProblems);
    this.#rejected = { rows: rejectedRows, problems };
    this.#skipsRows = Number(counts?.semantic ?? 0) > 0;
    this.#redactedPositions = new Set(
      (
        await this.#rows<{ position: number }>(
          "SELECT DISTINCT position FROM row_problems WHERE action = 'redact'",
        )
      ).map((row) => row.position),
    );

    if (accepted === 0 && rejectedRows === 0) {
      const problem: IngestProblem = {
        code: 'header_only',
        line: 2,
        column: null,
        header: null,
        message: 'the file has a header but no rows',
      };
      return { status: 'rejected', problems: [problem], problemCount: 1, rejectedRows: 0 };
    }
    const tooMany = rejectedRows > contract.maxRejectedRows;
    const nothingLeft = accepted - Number(counts?.semantic ?? 0) <= 0;
    if (tooMany || nothingLeft || Number(counts?.fatal ?? 0) > 0) {
      const problemCount = await this.#problemCount();
      return { status: 'rejected', problems, problemCount, rejectedRows };
    }
    return undefined;
  }

  async #problemCount(): Promise<number> {
    const [row] = await this.#rows<{ n: bigint }>(
      "SELECT (SELECT count(*) FROM rejected_lines) + (SELECT count(*) FROM row_problems WHERE action <> 'redact') AS n",
    );
    return Number(row?.n ?? 0);
  }

  /** The first problems in file order, each with line, column and a message without values. */
  async #problems(limit: number): Promise<IngestProblem[]> {
    const headers = new Map(this.#source.map((source) => [this.#alias(source), source]));
    const structural = await this.#rows<{
      line: bigint;
      column_idx: bigint | null;
      column_name: string | null;
      error_type: string;
    }>(
      `SELECT line, column_idx, column_name, error_type FROM rejected_lines ORDER BY line, column_idx LIMIT ${limit}`,
    );
    const problems: IngestProblem[] = structural.map((row) => {
      const source = row.column_name ? headers.get(row.column_name) : undefined;
      return describeRejectedLine(
        Number(row.line),
        row.error_type,
        source,
        row.column_idx,
        this.#source.length,
      );
    });

    const semantic = await this.#rows<{
      record: bigint;
      position: number;
      code: IngestProblemCode;
      message: string;
    }>(
      `SELECT record, position, code, message FROM row_problems WHERE action <> 'redact' ORDER BY record, position LIMIT ${limit}`,
    );
    if (semantic.length > 0) {
      const rejectedLines = (
        await this.#rows<{ line: bigint }>('SELECT DISTINCT line FROM rejected_lines ORDER BY line')
      ).map((row) => Number(row.line));
      const records = semantic.map((row) => Number(row.record));
      const located = await locateRecords(
        this.#request.source,
        this.#request.plan.contract.delimiter,
        records,
        new Set(rejectedLines),
      );
      for (const row of semantic) {
        const source = this.#source[row.position - 1];
        const record = Number(row.record);
        const line = located?.get(record);
        problems.push({
          code: row.code,
          // Without a second reading of the file, a line is counted as one record per line.
          line: line ?? lineOfRecord(record, rejectedLines),
          column: row.position,
          header: source?.header ?? null,
          message:
            line === undefined ? `${row.message} (the line number is approximate)` : row.message,
        });
      }
    }
    return problems
      .sort((a, b) => (a.line ?? 0) - (b.line ?? 0) || (a.column ?? 0) - (b.column ?? 0))
      .slice(0, limit);
  }

  /** Pass 2b: the vault's pseudonyms for the distinct patient ids, into a temporary table. */
  async #loadPseudonyms(): Promise<void> {
    const patient = this.#byRole('patient_id')[0];
    if (!patient) throw new Error('the plan has no patient_id column');
    this.#progress('pseudonymizing', null, null);
    const ids = (
      await this.#rows<{ id: string }>(
        `SELECT DISTINCT ${this.#alias(patient)} AS id FROM staged WHERE ${this.#alias(patient)} IS NOT NULL`,
      )
    ).map((row) => row.id);
    const entries = await this.#request.pseudonymizePatients(ids);
    await this.#connection.run(
      'CREATE TEMP TABLE patient_map (real VARCHAR, pseudonym VARCHAR, shift_days INTEGER)',
    );
    const appender = await this.#connection.createAppender('patient_map');
    for (const [real, entry] of entries) {
      appender.appendVarchar(real);
      appender.appendVarchar(entry.pseudonym);
      appender.appendInteger(entry.shiftDays);
      appender.endRow();
    }
    appender.closeSync();
  }

  /** Pass 3: the de-identified columns, for every row without a problem, to Parquet. */
  async #write(): Promise<void> {
    const { expressions, parameters } = this.#outputExpressions();
    const patient = this.#byRole('patient_id')[0];
    if (!patient) throw new Error('the plan has no patient_id column');
    for (const [index, value] of parameters.entries()) {
      await this.#connection.run(`SET VARIABLE linkage_${index + 1} = $1`, [value]);
    }
    await this.#timed(
      'writing',
      `
      COPY (
        SELECT ${expressions.join(',\n ')}
        FROM staged s JOIN patient_map p ON s.${this.#alias(patient)} = p.real
        ${this.#skipsRows ? "WHERE s.rowid NOT IN (SELECT record FROM row_problems WHERE action <> 'redact')" : ''}
      ) TO ${quoteLiteral(this.#request.target)} (FORMAT parquet, COMPRESSION snappy)`,
    );
  }

  /** The SELECT list of the lake columns, and the values of its `linkage_n` variables. */
  #outputExpressions(): { expressions: string[]; parameters: string[] } {
    const parameters: string[] = [];
    const plan = this.#request.plan;
    const bySourceName = new Map(this.#kept.map((source) => [source.column?.name, source]));
    const value = (name: string) => {
      const source = bySourceName.get(name);
      return source ? `s.${this.#alias(source)}` : undefined;
    };
    const reference = this.#ageReference();
    const [year, month] = plan.month.split('-').map(Number) as [number, number];
    const monthEnd = new Date(Date.UTC(year, month, 0)).toISOString().slice(0, 10);
    const referenceDate = reference
      ? `COALESCE(CAST(s.${this.#alias(reference)} AS DATE), DATE '${monthEnd}')`
      : `DATE '${monthEnd}'`;
    const restricted = plan.restrictedZip3.map(quoteLiteral).join(', ') || "''";
    // Whether this row's value of a text column was found to hold an identifier and is emptied.
    const redacted = (name: string) => {
      const source = bySourceName.get(name);
      return source && this.#redactedPositions.has(source.position)
        ? `s.rowid IN (SELECT record FROM row_problems WHERE action = 'redact' AND position = ${source.position})`
        : 'false';
    };

    const expressions = lakeColumns(plan.contract).map((lake) => {
      const column = plan.contract.columns.find((candidate) => candidate.name === lake.source);
      const input = value(lake.source);
      const as = ` AS ${quoteIdentifier(lake.name)}`;
      if (!column || input === undefined) return `NULL::${lakeType(lake.type)}${as}`;
      switch (column.role) {
        case 'patient_id':
          return `p.pseudonym${as}`;
        case 'direct_identifier':
          // A keyed hash: stable for the same value and id space, meaningless without the key.
          // The key reaches DuckDB as a bound variable, never as SQL text, so that no error
          // message can echo it.
          parameters.push(`${this.#request.linkageKey}|${this.#request.idSpace}|${column.name}|`);
          return `CASE WHEN ${input} IS NULL THEN NULL ELSE ${quoteLiteral(`${column.name.slice(0, 3)}_`)} || substr(sha256(getvariable('linkage_${parameters.length}') || ${input}), 1, 24) END${as}`;
        case 'birth_date': {
          const age = `date_sub('year', ${input}, ${referenceDate})`;
          return lake.name === 'birth_year'
            ? `CAST(CASE WHEN ${age} >= 90 THEN NULL ELSE year(${input}) END AS SMALLINT)${as}`
            : `CAST(LEAST(${age}, 90) AS SMALLINT)${as}`;
        }
        case 'event_date':
          return `${generaliseDate(input, column.type, plan.contract.datePolicy)}${as}`;
        case 'zip':
          return `CASE WHEN regexp_full_match(${input}, '\\d{5}(-\\d{4})?') THEN CASE WHEN substr(${input}, 1, 3) IN (${restricted}) THEN '000' ELSE substr(${input}, 1, 3) END END${as}`;
        case 'measure':
          if (!column.allowText) return `${input}${as}`;
          return lake.name === column.name
            ? `TRY_CAST(${input} AS ${lakeType(lake.type)})${as}`
            : `CASE WHEN ${redacted(column.name)} THEN NULL WHEN TRY_CAST(${input} AS DOUBLE) IS NULL THEN ${input} END${as}`;
        case 'free_text':
          return `CASE WHEN ${redacted(column.name)} THEN NULL ELSE ${input} END${as}`;
        default:
          return `${input}${as}`;
      }
    });
    return { expressions, parameters };
  }

  /** Figures for the data-quality report, read back from the Parquet just written. */
  async #profile(): Promise<Extract<IngestOutcome, { status: 'written' }>['profile']> {
    this.#progress('profiling', null, null);
    const target = quoteLiteral(this.#request.target);
    const lake = lakeColumns(this.#request.plan.contract);
    const nullCounts = lake.map(
      (column) =>
        `count(*) - count(${quoteIdentifier(column.name)}) AS ${quoteIdentifier(column.name)}`,
    );
    const [totals] = await this.#rows<Record<string, bigint>>(
      `SELECT count(*) AS __rows, count(DISTINCT patient) AS __patients, ${nullCounts.join(', ')} FROM read_parquet(${target})`,
    );
    const rows = Number(totals?.__rows ?? 0);
    const columns = lake.map((column) => ({
      name: column.name,
      nullRate: rows === 0 ? 0 : Number(totals?.[column.name] ?? 0) / rows,
    }));

    const codeColumn = lake.find((column) => column.role === 'code');
    const measure = lake.find((column) => column.role === 'measure' && column.type !== 'varchar');
    const label = lake.find((column) => column.role === 'code_label');
    const unit = lake.find((column) => column.role === 'unit');
    const codes = codeColumn
      ? (
          await this.#rows<{
            code: string;
            label: string | null;
            unit: string | null;
            count: bigint;
            numeric_count: bigint;
            min: number | null;
            max: number | null;
            mean: number | null;
            q: number[] | null;
          }>(`
          SELECT ${quoteIdentifier(codeColumn.name)}::VARCHAR AS code,
            ${label ? `any_value(${quoteIdentifier(label.name)})::VARCHAR` : 'NULL'} AS label,
            ${unit ? `mode(${quoteIdentifier(unit.name)})::VARCHAR` : 'NULL'} AS unit,
            count(*) AS count,
            ${measure ? `count(${quoteIdentifier(measure.name)})` : '0'} AS numeric_count,
            ${measure ? `min(${quoteIdentifier(measure.name)})::DOUBLE` : 'NULL'} AS min,
            ${measure ? `max(${quoteIdentifier(measure.name)})::DOUBLE` : 'NULL'} AS max,
            ${measure ? `avg(${quoteIdentifier(measure.name)})::DOUBLE` : 'NULL'} AS mean,
            ${measure ? `quantile_cont(${quoteIdentifier(measure.name)}, [0.25, 0.5, 0.75])::DOUBLE[]` : 'NULL'} AS q
          FROM read_parquet(${target}) GROUP BY 1 ORDER BY count(*) DESC, 1 LIMIT 5000`)
        ).map((row) => ({
          code: row.code,
          label: row.label,
          unit: row.unit,
          count: Number(row.count),
          numericCount: Number(row.numeric_count),
          min: row.min,
          max: row.max,
          mean: row.mean,
          q1: row.q?.[0] ?? null,
          median: row.q?.[1] ?? null,
          q3: row.q?.[2] ?? null,
        }))
      : [];

    const reference = this.#ageReference() ?? this.#byRole('event_date')[0];
    const [outside] = reference
      ? await this.#rows<{ n: bigint }>(
          `SELECT count(*) AS n FROM staged WHERE strftime(${this.#alias(reference)}, '%Y-%m') <> ${quoteLiteral(this.#request.plan.month)}`,
        )
      : [];
    const rejectedByReason: Record<string, number> = {};
    const structural = await this.#rows<{ error_type: string; n: bigint }>(
      'SELECT error_type, count(DISTINCT line) AS n FROM rejected_lines GROUP BY 1',
    );
    const semantic = await this.#rows<{ code: string; n: bigint }>(
      "SELECT code, count(DISTINCT record) AS n FROM row_problems WHERE action <> 'redact' GROUP BY 1",
    );
    for (const row of structural) {
      const code = rejectCodes[row.error_type] ?? 'invalid_value';
      rejectedByReason[code] = (rejectedByReason[code] ?? 0) + Number(row.n);
    }
    for (const row of semantic)
      rejectedByReason[row.code] = (rejectedByReason[row.code] ?? 0) + Number(row.n);
    const [redactions] = await this.#rows<{ n: bigint }>(
      "SELECT count(*) AS n FROM (SELECT DISTINCT record, position FROM row_problems WHERE action = 'redact')",
    );

    return {
      rows,
      rejectedRows: this.#rejected.rows,
      rejectedByReason,
      rejectedSamples: this.#rejected.problems,
      redactedValues: Number(redactions?.n ?? 0),
      patients: Number(totals?.__patients ?? 0),
      columns,
      codes,
      eventsOutsideMonth: Number(outside?.n ?? 0),
    };
  }

  /** The date ages are computed at: the marked reference, else the first event date. */
  #ageReference(): SourceColumn | undefined {
    const events = this.#byRole('event_date');
    return (
      events.find((source) => source.column?.role === 'event_date' && source.column.ageReference) ??
      events[0]
    );
  }

  /** Text that reaches the lake and so must be free of identifiers: free text, text results. */
  #scannedTextColumns(): Array<{ source: SourceColumn; text: string; action: ProblemAction }> {
    const actions = {
      reject_row: 'reject',
      reject_file: 'reject_file',
      redact_value: 'redact',
    } as const;
    return this.#source.flatMap((source) => {
      const column = source.column;
      const alias = this.#alias(source);
      if (column?.role === 'free_text' && column.allowed) {
        return [{ source, text: alias, action: actions[column.onIdentifier] }];
      }
      if (column?.role === 'measure' && column.allowText) {
        const text = `CASE WHEN TRY_CAST(${alias} AS DOUBLE) IS NULL THEN ${alias} END`;
        return [{ source, text, action: actions[column.onIdentifier] }];
      }
      return [];
    });
  }

  /** Staged columns are named by position, so no header text ever reaches SQL. */
  #alias(source: SourceColumn): string {
    return `c${source.position}`;
  }

  async #rows<T>(sql: string): Promise<T[]> {
    const reader = await this.#connection.runAndReadAll(sql);
    return reader.getRowObjectsJS() as unknown as T[];
  }

  /** Runs a long statement, reporting DuckDB's own progress while it runs. */
  async #timed(phase: IngestPhase, sql: string): Promise<void> {
    this.#progress(phase, 0, 0);
    const timer = setInterval(() => {
      const progress = this.#connection.progress;
      if (progress.percentage >= 0) {
        this.#progress(phase, progress.percentage, Number(progress.rows_processed));
      }
    }, 500);
    try {
      await this.#connection.run(sql);
    } finally {
      clearInterval(timer);
    }
    this.#progress(phase, 100, null);
  }

  #progress(phase: IngestPhase, percent: number | null, rowsProcessed: number | null): void {
    this.#request.onProgress?.({ phase, percent, rowsProcessed });
  }
}

function generaliseDate(input: string, type: 'date' | 'timestamp', policy: string): string {
  switch (policy) {
    case 'year':
      return `CAST(date_trunc('year', ${input}) AS DATE)`;
    case 'year_month':
      return `CAST(date_trunc('month', ${input}) AS DATE)`;
    case 'shift':
      return type === 'date' ? `(${input} + p.shift_days)` : `(${input} + to_days(p.shift_days))`;
    default:
      return input;
  }
}

function lakeType(type: string): string {
  return type === 'smallint' ? 'SMALLINT' : (duckTypes[type as SourceType] ?? 'VARCHAR');
}
