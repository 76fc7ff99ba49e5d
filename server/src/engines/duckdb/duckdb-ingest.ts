import { mkdir } from 'node:fs/promises';
import { DuckDBInstance, type DuckDBConnection } from '@duckdb/node-api';
import {
  lakeColumns,
  type IngestProblem,
  type IngestProblemCode,
  type SourceType,
} from '@medlake/shared';
import type { SourceColumn } from '../../ingest/ingest-plan.ts';
import { releaseFilesGlob, releaseFilesIn } from '../../ingest/lake-keys.ts';
import { locateRecords } from '../../ingest/locate-records.ts';
import { firstStrayLineBreak } from '../../ingest/stray-line-break.ts';
import { AppError } from '../../errors.ts';
import { bytesOf } from '../../env.ts';
import {
  codeProfileOf,
  codesQuery,
  totalsOf,
  totalsQuery,
  type ProfileSql,
} from '../../ingest/quality-profile.ts';
import type {
  EngineOptions,
  IngestEngine,
  IngestOutcome,
  IngestPhase,
  IngestRequest,
} from '../types.ts';
import {
  approximateLine,
  columnAlias,
  failureOf,
  headerOnly,
  IngestRules,
  lineOfRecord,
  minimumNameLength,
  readProblemMessage,
  scannedTextSql,
  type RowRule,
} from '../../ingest/ingest-rules.ts';
import { describeRejectedLine, rejectCodes } from './ingest-problems.ts';
import { DuckDbS3, s3Options } from './duckdb-s3.ts';
import { resourceError } from './resource-errors.ts';
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

export type DuckDbIngestOptions = EngineOptions & {
  /** DuckDB's memory limit for one ingest, e.g. "1GB"; beyond it DuckDB spills to disk. */
  memoryLimit: string;
  /** Where DuckDB's httpfs extension is installed, for a store on S3. */
  extensionDirectory?: string;
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
        const s3 = options.s3
          ? await DuckDbS3.open(connection, s3Options(options.s3, options))
          : undefined;
        await lockDown(connection, {
          ...options,
          extra: [`SET memory_limit = ${quoteLiteral(options.memoryLimit)}`, ...progressTracking],
        });
        const memory: IngestMemory = {
          limitBytes: bytesOf(options.memoryLimit),
          threads: Number(
            (
              await connection.runAndReadAll("SELECT current_setting('threads') AS n")
            ).getRows()[0]?.[0] ?? 1,
          ),
        };
        return await new IngestRun(connection, request, memory).run().catch((error: unknown) => {
          throw resourceError(error, options.memoryLimit) ?? (s3 ? s3.explain(error) : error);
        });
      } finally {
        connection.closeSync();
        instance.closeSync();
      }
    },
  };
}

/**
 * Patient ids sent to the vault at once: a few MB of JavaScript heap, and few enough SQLite
 * statements that the vault's per-statement cost stays negligible.
 */
const pseudonymBatch = 50_000;

/** What the ingest may use of DuckDB's memory, and by how many threads at once. */
type IngestMemory = { limitBytes: number; threads: number };

type RowCheck = {
  rule: RowRule;
  /** What the rule's rows are selected FROM (and WHERE). */
  condition: string;
  /** The staged row's id in `condition`; `rowid` unless it is a join. */
  record?: string;
};

class IngestRun {
  readonly #connection: DuckDBConnection;
  readonly #request: IngestRequest;
  readonly #memory: IngestMemory;
  readonly #rules: IngestRules;
  readonly #source: SourceColumn[];
  readonly #kept: SourceColumn[];
  /** Rows left out, and the first problems, for the quality report of a published file. */
  #rejected: { rows: number; problems: IngestProblem[] } = { rows: 0, problems: [] };
  /** Whether any staged row is left out, and which columns have values to empty: when none,
   * the write skips those joins, which cost time on every row. */
  #skipsRows = false;
  #redactedPositions = new Set<number>();
  /** Rows read from the file into the staged table, and of them, the rows to be written. */
  #stagedRows = 0;
  #writtenRows = 0;

  constructor(connection: DuckDBConnection, request: IngestRequest, memory: IngestMemory) {
    this.#connection = connection;
    this.#memory = memory;
    this.#request = request;
    this.#rules = new IngestRules(request.plan);
    this.#source = this.#rules.source;
    this.#kept = this.#rules.kept;
  }

  async run(): Promise<IngestOutcome> {
    const unreadable = await this.#stage().then(
      () => undefined,
      (error: unknown) => this.#readFailure(error),
    );
    if (unreadable) return unreadable;
    await this.#checkRows();
    const failure = await this.#failureIfAny();
    if (failure) return failure;
    await this.#loadPseudonyms();
    await this.#write();
    const { store, folder } = this.#request.target;
    const files = await releaseFilesIn(store, folder);
    return { status: 'written', files, profile: await this.#profile() };
  }

  /** Pass 1: the CSV into a typed temporary table; bad lines go to DuckDB's reject tables. */
  async #stage(): Promise<void> {
    const columns = this.#source
      .map(
        (source) =>
          `${quoteLiteral(columnAlias(source))}: ${quoteLiteral(duckTypes[source.readAs])}`,
      )
      .join(', ');
    const delimiter = this.#request.plan.contract.delimiter;
    const selected = [
      ...this.#kept.map((source) => columnAlias(source)),
      ...this.#rules.ownIdentifierFlagsSql(),
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
      this.#request.estimatedRows ?? null,
      async () => {
        const [row] = await this.#rows<{ n: bigint }>('SELECT count(*) AS n FROM staged');
        this.#stagedRows = Number(row?.n ?? 0);
        return this.#stagedRows;
      },
    );
  }

  /**
   * What stopped DuckDB's strict CSV reader before any row (its reject tables hold the rows it
   * could read past): a line break of another kind, which it does not locate, is found by
   * reading the file once more. Its messages are never shown, since they may quote values.
   */
  async #readFailure(error: unknown): Promise<IngestOutcome> {
    if (!(error instanceof Error) || !/CSV Parser|CSV Error/i.test(error.message)) throw error;
    const line = await firstStrayLineBreak(await this.#request.openSource());
    if (line === undefined) {
      throw new AppError(
        'VALIDATION_FAILED',
        'The file cannot be read as CSV: check its quotes and line breaks',
      );
    }
    const problem: IngestProblem = {
      code: 'stray_line_break',
      line,
      column: null,
      header: null,
      message: readProblemMessage('stray_line_break', undefined, this.#source.length),
    };
    return { status: 'rejected', problems: [problem], problemCount: 1, rejectedRows: 0 };
  }

  /**
   * Pass 2a: the row rules, as one table of problems. Text is searched for identifiers: one of
   * its own row's, a name of any patient in the upload, or something shaped like an SSN, phone
   * number or e-mail.
   */
  async #checkRows(): Promise<void> {
    const rules = this.#rules.rowRules();
    if (rules.some((rule) => rule.kind === 'patient_name')) {
      const values = this.#rules.nameColumns
        .map((source) => `SELECT ${columnAlias(source)} AS value FROM staged`)
        .join(' UNION ALL ');
      await this.#connection.run(`
        CREATE TEMP TABLE upload_names AS
        SELECT DISTINCT token AS name FROM (
          SELECT unnest(regexp_split_to_array(lower(value), '[^[:alnum:]]+')) AS token FROM (${values})
        ) WHERE length(token) >= ${minimumNameLength}`);
    }
    const parts = rules.map((rule) => {
      const check = this.#check(rule);
      return `SELECT DISTINCT ${check.record ?? 'rowid'} AS record, ${rule.position} AS position, '${rule.code}' AS code, ${quoteLiteral(rule.message)} AS message, '${rule.action}' AS action FROM ${check.condition}`;
    });
    const union =
      parts.length > 0
        ? parts.join('\nUNION ALL\n')
        : 'SELECT NULL::BIGINT AS record, NULL::INTEGER AS position, NULL AS code, NULL AS message, NULL AS action WHERE false';
    await this.#timed('checking', `CREATE TEMP TABLE row_problems AS ${union}`, this.#stagedRows);
  }

  /** A row rule in DuckDB's SQL: the staged rows it finds. */
  #check(rule: RowRule): RowCheck {
    switch (rule.kind) {
      case 'missing':
        return { rule, condition: `staged WHERE ${columnAlias(rule.column)} IS NULL` };
      case 'birth_after_event':
        return {
          rule,
          condition: `staged WHERE ${columnAlias(rule.birth)} > CAST(${columnAlias(rule.reference)} AS DATE)`,
        };
      case 'pattern':
        return {
          rule,
          condition: `staged WHERE regexp_matches(${scannedTextSql(rule.text)}, ${quoteLiteral(rule.pattern)})`,
        };
      case 'own_identifier':
        return { rule, condition: `staged WHERE hit_${rule.text.source.position}` };
      case 'patient_name': {
        const text = scannedTextSql(rule.text);
        return {
          rule,
          condition: `(SELECT rowid AS row_id, unnest(regexp_split_to_array(lower(${text}), '[^[:alnum:]]+')) AS token FROM staged WHERE ${text} IS NOT NULL) t JOIN upload_names n ON t.token = n.name`,
          record: 't.row_id',
        };
      }
    }
  }

  /** Decides whether the file fails, and if so with which problems. */
  async #failureIfAny(): Promise<IngestOutcome | undefined> {
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
    this.#writtenRows = accepted - Number(counts?.semantic ?? 0);
    this.#redactedPositions = new Set(
      (
        await this.#rows<{ position: number }>(
          "SELECT DISTINCT position FROM row_problems WHERE action = 'redact'",
        )
      ).map((row) => row.position),
    );

    const failure = failureOf(this.#request.plan, {
      accepted,
      rejectedRows,
      semanticRows: Number(counts?.semantic ?? 0),
      fatal: Number(counts?.fatal ?? 0),
    });
    if (failure === 'header_only') return headerOnly;
    if (failure === 'rejected') {
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
    const headers = new Map(this.#source.map((source) => [columnAlias(source), source]));
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
        await this.#request.openSource(),
        this.#request.plan.contract.delimiter,
        records,
        new Set(rejectedLines),
      );
      for (const row of semantic) {
        const source = this.#source[row.position - 1];
        const record = Number(row.record);
        const line = located.get(record);
        problems.push({
          code: row.code,
          // Without a second reading of the file, a line is counted as one record per line.
          line: line ?? lineOfRecord(record, rejectedLines),
          column: row.position,
          header: source?.header ?? null,
          message: line === undefined ? `${row.message}${approximateLine}` : row.message,
        });
      }
    }
    return problems
      .sort((a, b) => (a.line ?? 0) - (b.line ?? 0) || (a.column ?? 0) - (b.column ?? 0))
      .slice(0, limit);
  }

  /**
   * Pass 2b: the vault's pseudonyms for the distinct patient ids, into a temporary table. The
   * ids go to the vault and back in batches, so that a month of millions of new patients never
   * sits whole in the JavaScript heap: DuckDB keeps the distinct ids (spilling them if need be),
   * and medlake holds one batch at a time.
   */
  async #loadPseudonyms(): Promise<void> {
    const patient = this.#rules.patient();
    const started = performance.now();
    this.#progress('pseudonymizing', 0, null);
    await this.#connection.run(
      `CREATE TEMP TABLE patient_ids AS SELECT DISTINCT ${columnAlias(patient)} AS id FROM staged WHERE ${columnAlias(patient)} IS NOT NULL`,
    );
    const [count] = await this.#rows<{ n: bigint }>('SELECT count(*) AS n FROM patient_ids');
    const total = Number(count?.n ?? 0);
    await this.#connection.run(
      'CREATE TEMP TABLE patient_map (real VARCHAR, pseudonym VARCHAR, shift_days INTEGER)',
    );
    for (let from = 0; from < total; from += pseudonymBatch) {
      // A rowid range is a cheap slice of the table, where an OFFSET would rescan it.
      const reader = await this.#connection.runAndReadAll(
        `SELECT id FROM patient_ids WHERE rowid >= ${from} AND rowid < ${from + pseudonymBatch}`,
      );
      const ids = reader.getColumnsJS()[0] as string[];
      const entries = await this.#request.pseudonymizePatients(ids);
      const appender = await this.#connection.createAppender('patient_map');
      for (const [real, entry] of entries) {
        appender.appendVarchar(real);
        appender.appendVarchar(entry.pseudonym);
        appender.appendInteger(entry.shiftDays);
        appender.endRow();
      }
      appender.closeSync();
      const done = Math.min(total, from + pseudonymBatch);
      this.#progress('pseudonymizing', (100 * done) / total, {
        rows: done,
        total,
        started,
        counting: 'patients',
      });
    }
    await this.#connection.run('DROP TABLE patient_ids');
  }

  async #targetLocation(): Promise<string> {
    const { store, folder } = this.#request.target;
    return store.locateForWrite(folder);
  }

  /** Pass 3: the de-identified columns, for every row without a problem, to Parquet. */
  async #write(): Promise<void> {
    const { expressions, parameters } = this.#outputExpressions();
    const patient = this.#rules.patient();
    for (const [index, value] of parameters.entries()) {
      await this.#connection.run(`SET VARIABLE linkage_${index + 1} = $1`, [value]);
    }
    // Rows left out and values emptied, one row per record, joined rather than looked up with
    // IN (subquery): DuckDB cannot tell the progress of a statement with such a lookup.
    const actions = this.#skipsRows || this.#redactedPositions.size > 0;
    if (actions) {
      await this.#connection.run(`
        CREATE TEMP TABLE row_actions AS
        SELECT record, bool_or(action <> 'redact') AS skipped,
          list(DISTINCT position) FILTER (WHERE action = 'redact') AS redacted
        FROM row_problems GROUP BY record`);
    }
    await this.#timed(
      'writing',
      `
      COPY (
        SELECT ${expressions.join(',\n ')}
        FROM staged s JOIN patient_map p ON s.${columnAlias(patient)} = p.real
        ${actions ? 'LEFT JOIN row_actions a ON a.record = s.rowid WHERE a.skipped IS NOT TRUE' : ''}
      ) TO ${quoteLiteral(await this.#targetLocation())} (
        FORMAT parquet, COMPRESSION snappy, FILENAME_PATTERN 'part-{i}',
        FILE_SIZE_BYTES ${Math.round(this.#request.fileBytes)},
        ROW_GROUP_SIZE ${rowGroupRows(this.#request.fileBytes, {
          limitBytes: this.#memory.limitBytes,
          threads: this.#memory.threads,
          bytesPerRow: this.#request.sourceBytes / Math.max(this.#stagedRows, 1),
        })},
        PRESERVE_ORDER false)`,
      this.#writtenRows,
    );
  }

  /** The SELECT list of the lake columns, and the values of its `linkage_n` variables. */
  #outputExpressions(): { expressions: string[]; parameters: string[] } {
    const parameters: string[] = [];
    const plan = this.#request.plan;
    const bySourceName = new Map(this.#kept.map((source) => [source.column?.name, source]));
    const value = (name: string) => {
      const source = bySourceName.get(name);
      return source ? `s.${columnAlias(source)}` : undefined;
    };
    const reference = this.#rules.ageReference();
    const monthEnd = this.#rules.monthEnd();
    const referenceDate = reference
      ? `COALESCE(CAST(s.${columnAlias(reference)} AS DATE), DATE '${monthEnd}')`
      : `DATE '${monthEnd}'`;
    const restricted = plan.restrictedZip3.map(quoteLiteral).join(', ') || "''";
    // Whether this row's value of a text column was found to hold an identifier and is emptied.
    const redacted = (name: string) => {
      const source = bySourceName.get(name);
      return source && this.#redactedPositions.has(source.position)
        ? `list_contains(a.redacted, ${source.position})`
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
          // list_contains, not IN (…): DuckDB plans a long IN list as a join with a source
          // whose progress it cannot tell, and then reports none for the whole write.
          return `CASE WHEN regexp_full_match(${input}, '\\d{5}(-\\d{4})?') THEN CASE WHEN list_contains([${restricted}], substr(${input}, 1, 3)) THEN '000' ELSE substr(${input}, 1, 3) END END${as}`;
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
    const contract = this.#request.plan.contract;
    const sql: ProfileSql = {
      files: `read_parquet(${quoteLiteral(releaseFilesGlob(await this.#targetLocation()))})`,
      quote: quoteIdentifier,
      asText: (expression) => `CAST(${expression} AS VARCHAR)`,
      asDouble: (expression) => `CAST(${expression} AS DOUBLE)`,
      quartiles: (expression) => `quantile_cont(${expression}, [0.25, 0.5, 0.75])::DOUBLE[]`,
    };
    const [totals] = await this.#rows<Record<string, unknown>>(totalsQuery(contract, sql));
    const codes = codesQuery(contract, sql);
    const profiled = {
      ...totalsOf(contract, totals),
      codes: codes ? (await this.#rows<Record<string, unknown>>(codes)).map(codeProfileOf) : [],
    };

    const reference = this.#rules.ageReference() ?? this.#rules.byRole('event_date')[0];
    const [outside] = reference
      ? await this.#rows<{ n: bigint }>(
          `SELECT count(*) AS n FROM staged WHERE strftime(${columnAlias(reference)}, '%Y-%m') <> ${quoteLiteral(this.#request.plan.month)}`,
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
      ...profiled,
      rejectedRows: this.#rejected.rows,
      rejectedByReason,
      rejectedSamples: this.#rejected.problems,
      redactedValues: Number(redactions?.n ?? 0),
      eventsOutsideMonth: Number(outside?.n ?? 0),
    };
  }

  async #rows<T>(sql: string): Promise<T[]> {
    const reader = await this.#connection.runAndReadAll(sql);
    return reader.getRowObjectsJS() as unknown as T[];
  }

  /**
   * Runs a long statement, reporting its progress while it runs: DuckDB's share of the work
   * done (of the CSV's bytes while reading, of the staged rows after that), and the rows that
   * share stands for. DuckDB's own row figure counts its internal units, not rows, so it is
   * not shown.
   */
  async #timed(
    phase: IngestPhase,
    sql: string,
    rowsTotal: number | null,
    count?: () => Promise<number>,
  ): Promise<void> {
    const started = performance.now();
    const report = (percent: number) =>
      this.#progress(
        phase,
        percent,
        rowsTotal === null
          ? null
          : {
              rows: Math.round((rowsTotal * percent) / 100),
              total: rowsTotal,
              estimated: true,
              started,
            },
      );
    report(0);
    const timer = setInterval(() => {
      const progress = this.#connection.progress;
      if (progress.percentage >= 0) report(Math.min(progress.percentage, 100));
    }, 500);
    try {
      await this.#connection.run(sql);
    } finally {
      clearInterval(timer);
    }
    const rows = count ? await count() : rowsTotal;
    this.#progress(
      phase,
      100,
      rows === null ? null : { rows, total: rows, estimated: false, started },
    );
  }

  #progress(
    phase: IngestPhase,
    percent: number | null,
    rows: {
      rows: number;
      total: number | null;
      estimated?: boolean;
      started: number;
      counting?: 'rows' | 'patients';
    } | null,
  ): void {
    const seconds = rows ? (performance.now() - rows.started) / 1000 : 0;
    this.#request.onProgress?.({
      phase,
      percent,
      rowsProcessed: rows?.rows ?? null,
      rowsTotal: rows?.total ?? null,
      rowsPerSecond: rows && seconds > 0 ? Math.round(rows.rows / seconds) : null,
      estimated: rows?.estimated ?? false,
      counting: rows?.counting ?? 'rows',
    });
  }
}

/**
 * Rows per row group: about a 256th of a file (a million rows in a 256 MB file, tens of MB once
 * compressed, which Spark and S3 read well), never under DuckDB's own vector-friendly minimum.
 * A file is only cut between row groups, so small files need small groups.
 */
function rowGroupRows(fileBytes: number, memory: WriteMemory): number {
  // Each writing thread holds its current row group in memory, uncompressed, beside the join's
  // hash table: together they stay within a quarter of the memory limit.
  const fitting = memory.limitBytes / (4 * memory.threads * Math.max(memory.bytesPerRow, 1));
  return Math.min(1_048_576, Math.max(2048, Math.round(Math.min(fileBytes / 256, fitting))));
}

type WriteMemory = IngestMemory & { bytesPerRow: number };

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
