import { lakeColumns, type IngestProblem, type IngestProblemCode } from '@medlake/shared';
import type { ReleaseFileStats } from '../catalog/release-files-repository.ts';
import { AppError } from '../errors.ts';
import type { SourceColumn } from './ingest-plan.ts';
import type {
  IngestDialect,
  IngestRunner,
  PseudonymBatch,
  ReleaseLayout,
  RowValues,
} from './ingest-runner.ts';
import type { IngestOutcome, IngestPhase, IngestRequest } from './ingest-types.ts';
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
} from './ingest-rules.ts';
import { releaseFilesGlob } from './lake-keys.ts';
import { releaseSort } from './lake-layout.ts';
import { readReleaseFileStats } from './release-file-stats.ts';
import { dictionaryPairsKey, pairColumns, pairsQuery } from './release-pairs.ts';
import { locateRecords } from './locate-records.ts';
import { codeProfileOf, codesQuery, totalsOf, totalsQuery } from './quality-profile.ts';
import { loadCanonicalUnits } from './canonical-units.ts';
import { registerUnitConversions, UnitSql, type UnitPair } from './unit-step.ts';
import { zipIsValidSql, zipSql } from './zip-codes.ts';
import { firstStrayLineBreak } from './stray-line-break.ts';

/**
 * Patient ids sent to the vault at once: a few MB of JavaScript heap, few enough SQLite
 * statements that the vault's per-statement cost stays negligible, and well under Spark
 * Connect's message limit.
 */
const defaultPseudonymBatch = 50_000;

/**
 * The report's figures that the staged rows and the problems give, without the pseudonyms or the
 * release: the engine computes them while the vault works on a batch of patient ids.
 */
type StagedFigures = {
  unitCounts: Map<string, { unconvertible: number; implausible: number }>;
  rejectedByReason: Record<string, number>;
  redactedValues: number;
  datesAndZip: DatesAndZipCounts;
};

/** Rows dated outside the month and the window, and ZIP codes padded or emptied. */
type DatesAndZipCounts = {
  eventsOutsideMonth: number;
  eventsOutsideWindow?: number;
  zipCodes?: { padded: number; emptied: number };
};

/** A problem's row as the pipeline reads it back. */
type ProblemRow = {
  record: bigint | number | null;
  line: bigint | number | null;
  position: bigint | number | null;
  code: IngestProblemCode;
  rule: bigint | number;
};

/**
 * One ingest on any engine, in three passes over the data:
 * 1. the CSV is read once into a staged table, typed by the contract; what the reader refuses
 *    becomes a problem with its line or record;
 * 2. the row rules (required values, impossible dates, identifiers in free text) make one
 *    table of problems; the distinct patient ids go to the vault, a batch at a time, and
 *    their pseudonyms to the engine;
 * 3. the de-identified columns of every row without a problem go to Parquet, joined with the
 *    pseudonyms, and the quality report is read back from the files.
 * Every rule is written here once, in the engine's dialect; the engine runs the statements.
 * Real identifiers exist only in the engine's session, which the engine ends afterwards.
 */
export function runIngest(runner: IngestRunner, request: IngestRequest): Promise<IngestOutcome> {
  return new IngestPipeline(runner, request).run();
}

class IngestPipeline {
  readonly #runner: IngestRunner;
  readonly #sql: IngestDialect;
  readonly #request: IngestRequest;
  readonly #rules: IngestRules;
  readonly #rowRules: RowRule[];
  readonly #source: SourceColumn[];
  /** Rows left out, and the first problems, for the quality report of a published file. */
  #rejected: { rows: number; problems: IngestProblem[] } = { rows: 0, problems: [] };
  /** Whether any staged row is left out, and which columns have values to empty: when none,
   * the write skips those joins, which cost time on every row. */
  #skipsRows = false;
  #redactedPositions = new Set<number>();
  /** Rows read into the staged table (where the engine counts them), and rows to be written. */
  #stagedRows: number | null = null;
  /** Whether the reader numbers records by their line (CsvReader.recordsAreLines). */
  #recordsAreLines = false;
  #writtenRows = 0;
  /** The conversion to canonical units, where the contract asks for one (unit-step.ts). */
  readonly #units: UnitSql | undefined;
  #unconvertibleUnits: UnitPair[] = [];
  /** Set while the vault works (#besideTheVault), read by the report. */
  #figures: Partial<StagedFigures> = {};

  constructor(runner: IngestRunner, request: IngestRequest) {
    this.#runner = runner;
    this.#sql = runner.dialect;
    this.#request = request;
    this.#rules = new IngestRules(request.plan);
    this.#rowRules = this.#rules.rowRules();
    this.#source = this.#rules.source;
    this.#units = this.#rules.units && new UnitSql(this.#rules.units, this.#sql);
  }

  async run(): Promise<IngestOutcome> {
    const unreadable = await this.#stage().then(
      () => undefined,
      (error: unknown) => this.#readFailure(error),
    );
    if (unreadable) return unreadable;
    if (this.#rules.units) {
      this.#unconvertibleUnits = await registerUnitConversions(
        this.#runner,
        this.#rules.units,
        loadCanonicalUnits(),
      );
    }
    await this.#checkRows();
    const failure = await this.#failureIfAny();
    if (failure) return failure;
    await this.#pseudonymize(this.#besideTheVault());
    const files = await this.#write();
    this.#progress('profiling', null, null);
    const pairsWritten = await this.#writePairs();
    const profile = await this.#profile(pairsWritten);
    const fileStats = await this.#fileStats(files);
    return { status: 'written', files, profile, fileStats, pairsWritten };
  }

  /** Pass 1: the CSV into the staged table; `accepted` and `read_problems` over it. */
  async #stage(): Promise<void> {
    const reader = this.#sql.readCsv({
      location: this.#request.source,
      delimiter: this.#request.plan.contract.delimiter,
      multiLineValues: this.#request.plan.contract.multiLineValues,
      sizeBytes: this.#request.sourceBytes,
      columns: this.#source,
      kept: this.#rules.kept,
      flags: this.#rules.ownIdentifierFlagsSql(),
    });
    for (const statement of reader.setup) await this.#runner.run(statement);
    await this.#timed(
      'reading',
      this.#request.estimatedRows ?? null,
      (onPercent) => this.#runner.table('staged', reader.staged, onPercent),
      async () => {
        this.#stagedRows = await this.#count('SELECT count(*) AS n FROM staged');
        return this.#stagedRows;
      },
    );
    for (const { name, query } of reader.tables ?? []) await this.#runner.table(name, query);
    this.#recordsAreLines = reader.recordsAreLines ?? false;
    await this.#runner.view('accepted', reader.accepted);
    await this.#runner.view('read_problems', reader.problems);
  }

  /**
   * What stopped a strict CSV reader before any row: a line break of another kind, which the
   * reader does not locate, is found by reading the file once more. The reader's messages are
   * never shown, since they may quote values.
   */
  async #readFailure(error: unknown): Promise<IngestOutcome> {
    if (!this.#runner.isUnreadable(error)) throw error;
    const line = await firstStrayLineBreak(await this.#request.openSource());
    if (line === undefined) {
      throw new AppError(
        'upload_invalid',
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
   * Pass 2a: the problems of reading and of the row rules, as one table. Text is searched for
   * identifiers: one of its own row's, a name of any patient in the upload, or something
   * shaped like an SSN, phone number or e-mail. Rules on a row's own values take one pass;
   * only names, which are matched against the whole upload, need a join.
   */
  async #checkRows(): Promise<void> {
    const sql = this.#sql;
    const values = (rule: RowRule, index: number, record = 'record'): RowValues => [
      ['record', record],
      ['line', 'CAST(NULL AS BIGINT)'],
      ['position', String(rule.position)],
      ['code', `'${rule.code}'`],
      ['rule', String(index)],
      ['action', `'${rule.action}'`],
    ];
    const parts = [
      "SELECT record, line, position, code, -1 AS rule, 'reject' AS action FROM read_problems",
    ];
    const ownRow = this.#rowRules.flatMap((rule, index) => {
      const when = this.#condition(rule);
      return when === undefined ? [] : [{ when, values: values(rule, index).slice(1) }];
    });
    if (ownRow.length > 0) parts.push(sql.rowsWhere('accepted', ownRow));
    if (this.#rowRules.some((rule) => rule.kind === 'patient_name')) {
      const names = this.#rules.nameColumns
        .map((source) => `SELECT ${columnAlias(source)} AS value FROM accepted`)
        .join(' UNION ALL ');
      // A name recurs on every row of its patient: each distinct one is split into words once.
      await this.#runner.table(
        'upload_names',
        `SELECT DISTINCT token AS name FROM (
          SELECT ${sql.words('value')} AS token FROM (SELECT DISTINCT value FROM (${names}) n) v) w
        WHERE length(token) >= ${minimumNameLength}`,
      );
    }
    for (const [index, rule] of this.#rowRules.entries()) {
      const units = this.#units;
      if (units && (rule.kind === 'unit_unconvertible' || rule.kind === 'implausible_value')) {
        const selected = values(rule, index, 's.record').map(
          ([name, value]) => `${value} AS ${name}`,
        );
        const when =
          rule.kind === 'unit_unconvertible' ? units.unconvertible() : units.implausible();
        parts.push(`SELECT ${selected.join(', ')} FROM accepted s ${units.join()} WHERE ${when}`);
      }
      if (rule.kind !== 'patient_name') continue;
      const text = scannedTextSql(rule.text);
      const selected = values(rule, index, 't.record').map(
        ([name, value]) => `${value} AS ${name}`,
      );
      parts.push(`SELECT DISTINCT ${selected.join(', ')}
        FROM (SELECT record, ${sql.words(text)} AS token FROM accepted WHERE ${text} IS NOT NULL) t
        JOIN upload_names n ON t.token = n.name`);
    }
    await this.#timed('checking', this.#stagedRows, (onPercent) =>
      this.#runner.table('problems', parts.join('\nUNION ALL\n'), onPercent),
    );
  }

  /** A rule on a row's own values as a condition; undefined for a rule that needs a join. */
  #condition(rule: RowRule): string | undefined {
    switch (rule.kind) {
      case 'missing':
        return `${columnAlias(rule.column)} IS NULL`;
      case 'birth_after_event':
        return `${columnAlias(rule.birth)} > CAST(${columnAlias(rule.reference)} AS DATE)`;
      case 'pattern':
        return this.#sql.matches(scannedTextSql(rule.text), rule.pattern);
      case 'own_identifier':
        return `hit_${rule.text.source.position}`;
      case 'event_outside_window':
        return rule.when;
      case 'patient_name':
      case 'unit_unconvertible':
      case 'implausible_value':
        return undefined;
    }
  }

  /** Decides whether the file fails, and if so with which problems. */
  async #failureIfAny(): Promise<IngestOutcome | undefined> {
    const [counts] = await this.#runner.rows(`
      SELECT
        (SELECT count(*) FROM accepted) AS accepted,
        (SELECT count(DISTINCT line) + count(DISTINCT record) FROM problems WHERE rule < 0) AS structural,
        (SELECT count(DISTINCT record) FROM problems WHERE rule >= 0 AND action <> 'redact') AS semantic,
        (SELECT count(*) FROM problems WHERE action = 'reject_file') AS fatal,
        (SELECT count(*) FROM problems WHERE action <> 'redact') AS problems`);
    const accepted = Number(counts?.accepted ?? 0);
    const semanticRows = Number(counts?.semantic ?? 0);
    const rejectedRows = Number(counts?.structural ?? 0) + semanticRows;
    const problems = await this.#problems(this.#request.maxReportedProblems);
    this.#rejected = { rows: rejectedRows, problems };
    this.#skipsRows = semanticRows > 0;
    this.#writtenRows = accepted - semanticRows;
    this.#redactedPositions = new Set(
      (
        await this.#runner.rows("SELECT DISTINCT position FROM problems WHERE action = 'redact'")
      ).map((row) => Number(row.position)),
    );
    const failure = failureOf(this.#request.plan, {
      accepted,
      rejectedRows,
      semanticRows,
      fatal: Number(counts?.fatal ?? 0),
    });
    if (failure === 'header_only') return headerOnly;
    if (failure === 'rejected') {
      const problemCount = Number(counts?.problems ?? 0);
      return { status: 'rejected', problems, problemCount, rejectedRows };
    }
    return undefined;
  }

  /** The first problems in file order, each with line, column and a message without values. */
  async #problems(limit: number): Promise<IngestProblem[]> {
    const columns = 'SELECT record, line, position, code, rule FROM problems';
    const rows = [
      ...(await this.#runner.rows<ProblemRow>(
        `${columns} WHERE rule < 0 ORDER BY line, record, position NULLS FIRST LIMIT ${limit}`,
      )),
      ...(await this.#runner.rows<ProblemRow>(
        `${columns} WHERE rule >= 0 AND action <> 'redact' ORDER BY record, position, rule LIMIT ${limit}`,
      )),
    ];
    // Records are found in the file by reading it again; lines of problems the reader gave a
    // line instead of a record are not counted as records.
    const records = this.#recordsAreLines
      ? []
      : rows.flatMap((row) => (row.line === null ? [Number(row.record)] : []));
    let uncounted: number[] = [];
    let located = new Map<number, number>();
    if (records.length > 0) {
      uncounted = (
        await this.#runner.rows<{ line: bigint | number }>(
          'SELECT DISTINCT line FROM problems WHERE line IS NOT NULL ORDER BY line',
        )
      ).map((row) => Number(row.line));
      located = await locateRecords(
        await this.#request.openSource(),
        this.#request.plan.contract.delimiter,
        records,
        new Set(uncounted),
      );
    }
    const problems = rows.map((row): IngestProblem => {
      const position = row.position === null ? null : Number(row.position);
      const source = position === null ? undefined : this.#source[position - 1];
      const rule = Number(row.rule);
      const message =
        rule >= 0
          ? (this.#rowRules[rule]?.message ?? row.code)
          : readProblemMessage(row.code, source, this.#source.length);
      const record = Number(row.record);
      const line =
        row.line !== null ? Number(row.line) : this.#recordsAreLines ? record : located.get(record);
      return {
        code: row.code,
        // Without a second reading of the file, a line is counted as one record per line.
        line: line ?? lineOfRecord(record, uncounted),
        column: position,
        header: source?.header ?? null,
        message: line === undefined ? `${message}${approximateLine}` : message,
      };
    });
    return problems
      .sort((a, b) => (a.line ?? 0) - (b.line ?? 0) || (a.column ?? 0) - (b.column ?? 0))
      .slice(0, limit);
  }

  /**
   * Pass 2b: the vault's pseudonyms for the distinct patient ids, to the engine. The ids go to
   * the vault and back in batches, so that a month of millions of new patients never sits
   * whole in the vault's work: the engine keeps the distinct ids, and hands out a batch at a
   * time.
   */
  async #pseudonymize(beside: Array<() => Promise<void>>): Promise<void> {
    const patient = columnAlias(this.#rules.patient());
    const started = performance.now();
    this.#progress('pseudonymizing', 0, null);
    const ids = await this.#runner.valuesOf(
      `SELECT DISTINCT ${patient} AS id FROM accepted WHERE ${patient} IS NOT NULL`,
    );
    const request = this.#request;
    const progress = (done: number) =>
      this.#progress('pseudonymizing', (100 * done) / ids.total, {
        rows: done,
        total: ids.total,
        started,
        counting: 'patients',
      });
    const pending = [...beside];
    const pseudonymBatch = request.pseudonymBatch ?? defaultPseudonymBatch;
    async function* batches(): AsyncGenerator<PseudonymBatch> {
      for (let from = 0; from < ids.total; from += pseudonymBatch) {
        const batch = await ids.slice(from, pseudonymBatch);
        // The engine's next statement starts here and runs on its own threads while the vault
        // works on the batch, on this one (synchronously, when it is local): its work is then
        // done beside the vault's rather than after it, with a core otherwise idle.
        // Its outcome is taken at once: a statement that fails while the vault's answer is
        // still on its way (a vault service's) would otherwise be a rejection left unhandled
        // for that long, which ends the server's process.
        const engine = pending
          .shift()?.()
          .then(
            () => undefined,
            (error: unknown) => ({ error }),
          );
        let pseudonyms: PseudonymBatch;
        try {
          pseudonyms = await request.pseudonymizePatients(batch);
        } catch (error) {
          // The vault's error is the one to tell; the engine's statement is let finish first.
          await engine;
          throw error;
        }
        const failed = await engine;
        if (failed) throw failed.error;
        yield pseudonyms;
        progress(Math.min(ids.total, from + pseudonymBatch));
      }
    }
    await this.#runner.registerPseudonyms(batches());
    await ids.close();
    for (const work of pending) await work();
  }

  /**
   * The statements that need neither the pseudonyms nor the release, each run while the vault
   * works on a batch of ids (#pseudonymize): the rows left out and the values emptied, which the
   * write joins, and the report's figures from the staged rows and the problems. One statement
   * each, so that each starts before the vault's batch does.
   */
  #besideTheVault(): Array<() => Promise<void>> {
    const figures = this.#figures;
    const work: Array<() => Promise<void>> = [];
    if (this.#skipsRows || this.#redactedPositions.size > 0) {
      work.push(() =>
        this.#runner.table(
          'row_actions',
          `SELECT record, bool_or(action <> 'redact') AS skipped,
            ${this.#sql.collectSet('position')} FILTER (WHERE action = 'redact') AS redacted
          FROM problems WHERE rule >= 0 GROUP BY record`,
        ),
      );
    }
    work.push(
      async () => {
        figures.datesAndZip = await this.#datesAndZipCounts();
      },
      async () => {
        figures.rejectedByReason = await this.#rejectedByReason();
      },
      async () => {
        figures.redactedValues = await this.#count(
          "SELECT count(*) AS n FROM (SELECT DISTINCT record, position FROM problems WHERE action = 'redact') r",
        );
      },
      async () => {
        figures.unitCounts = await this.#unitCounts();
      },
    );
    return work;
  }

  /** Rows left out, by the problem's code. */
  async #rejectedByReason(): Promise<Record<string, number>> {
    const rejectedByReason: Record<string, number> = {};
    const reasons = await this.#runner.rows<{ code: string; n: bigint | number }>(`
      SELECT code, count(DISTINCT line) + count(DISTINCT record) AS n FROM problems WHERE rule < 0 GROUP BY code
      UNION ALL
      SELECT code, count(DISTINCT record) AS n FROM problems WHERE rule >= 0 AND action <> 'redact' GROUP BY code`);
    for (const row of reasons) {
      rejectedByReason[row.code] = (rejectedByReason[row.code] ?? 0) + Number(row.n);
    }
    return rejectedByReason;
  }

  /**
   * Pass 3: the de-identified columns, for every row without a problem, to Parquet, sorted by
   * code and event date so that queries skip the row groups of other codes (lake-layout.ts).
   */
  async #write(): Promise<string[]> {
    const expressions = await this.#outputExpressions();
    const patient = columnAlias(this.#rules.patient());
    // Rows left out and values emptied, one row per record (made beside the vault), joined
    // rather than looked up with IN (subquery): DuckDB cannot tell the progress of a statement
    // with such a lookup.
    const actions = this.#skipsRows || this.#redactedPositions.size > 0;
    const query = `
      SELECT ${expressions.join(',\n ')}
      FROM accepted s JOIN patient_map p ON s.${patient} = p.real
      ${this.#units?.join() ?? ''}
      ${actions ? 'LEFT JOIN row_actions a ON a.record = s.record WHERE a.skipped IS NULL OR NOT a.skipped' : ''}`;
    const sort = releaseSort(this.#request.plan.contract);
    const orderBy = sort.orderBy.map((name) => this.#sql.quoteIdentifier(name));
    const layout: ReleaseLayout = {
      stagedRows: this.#stagedRows,
      rows: this.#writtenRows,
      orderBy,
      bloomFilters: sort.bloomFilters,
      ...this.#sortKeys(expressions, orderBy, patient),
    };
    return this.#timed('writing', this.#writtenRows, (onPercent) =>
      this.#runner.writeRelease(query, layout, onPercent),
    );
  }

  /**
   * The release's dictionary pairs (release-pairs.ts), from its files just written, into its
   * folder, in the ingest's session: the publish then only counts them, and the query engine's
   * memory never holds a month's aggregate (the publish's count, where the pairs were written,
   * was the peak of the process). Reading the files' four columns took a third less CPU than
   * computing them again from the staged rows (1.2 against 1.8 s, 1 M rows). False where the
   * engine cannot write a file, or the contract has no code.
   */
  async #writePairs(): Promise<boolean> {
    const { store, folder } = this.#request.target;
    const columns = pairColumns(this.#sql, this.#request.plan.contract);
    if (!this.#runner.writeParquet || !columns) return false;
    const location = await store.locateForWrite(dictionaryPairsKey(folder));
    const rows = this.#sql.parquetFiles(releaseFilesGlob(store.locate(folder)));
    await this.#runner.writeParquet(pairsQuery(rows, columns), location);
    return true;
  }

  /**
   * The sort columns of every row read with a patient (rows left out included), where their
   * expressions need no more than the row and its pseudonym: counting the sort key's values
   * then skips the joins with the units and the rows left out (measured 0.2-0.7 s against
   * 0.5-0.7 s per million rows). Rows left out only make a range's count an overestimate,
   * which is safe: a range is cut to fit in memory.
   */
  #sortKeys(
    expressions: readonly string[],
    orderBy: readonly string[],
    patient: string,
  ): { sortKeys?: string } {
    const keys = orderBy.map((quoted) => expressions.find((e) => e.endsWith(` AS ${quoted}`)));
    const simple = (key: string | undefined): key is string =>
      key !== undefined && !/\b[ua]\./.test(key);
    if (keys.length === 0 || !keys.every(simple)) return {};
    return {
      sortKeys: `SELECT ${keys.join(', ')} FROM accepted s JOIN patient_map p ON s.${patient} = p.real`,
    };
  }

  /** The SELECT list of the lake columns: where the de-identification rules are written. */
  async #outputExpressions(): Promise<string[]> {
    const sql = this.#sql;
    const plan = this.#request.plan;
    const bySourceName = new Map(this.#rules.kept.map((source) => [source.column?.name, source]));
    const value = (name: string) => {
      const source = bySourceName.get(name);
      return source ? `s.${columnAlias(source)}` : undefined;
    };
    const reference = this.#rules.ageReference();
    const monthEnd = `DATE '${this.#rules.monthEnd()}'`;
    const referenceDate = reference
      ? `COALESCE(CAST(s.${columnAlias(reference)} AS DATE), ${monthEnd})`
      : monthEnd;
    const restricted = plan.restrictedZip3.length > 0 ? plan.restrictedZip3 : [''];
    // Whether this row's value of a text column was found to hold an identifier and is emptied.
    const redacted = (name: string) => {
      const source = bySourceName.get(name);
      return source && this.#redactedPositions.has(source.position)
        ? sql.arrayContains('a.redacted', String(source.position))
        : 'false';
    };

    const expressions: string[] = [];
    for (const lake of lakeColumns(plan.contract)) {
      const column = plan.contract.columns.find((candidate) => candidate.name === lake.source);
      const input = value(lake.source);
      const type = sql.typeName(lake.type);
      const as = ` AS ${sql.quoteIdentifier(lake.name)}`;
      if (!column || input === undefined) {
        expressions.push(`CAST(NULL AS ${type})${as}`);
        continue;
      }
      const converted = this.#convertedValue(lake.name, column.name);
      if (converted !== undefined) {
        expressions.push(`${converted}${as}`);
        continue;
      }
      switch (column.role) {
        case 'patient_id':
          expressions.push(`p.pseudonym${as}`);
          break;
        case 'direct_identifier': {
          // A keyed hash: stable for the same value and id space, meaningless without the key.
          // The key is bound, never SQL text, so that no error message can echo it.
          const key = await this.#runner.secret(
            `${this.#request.linkageKey}|${this.#request.idSpace}|${column.name}|`,
          );
          const hash = sql.sha256Hex(`concat(${key}, ${input})`);
          const prefix = sql.literal(`${column.name.slice(0, 3)}_`);
          expressions.push(
            `CASE WHEN ${input} IS NULL THEN NULL ELSE concat(${prefix}, substr(${hash}, 1, 24)) END${as}`,
          );
          break;
        }
        case 'birth_date': {
          const age = sql.completeYears(input, referenceDate);
          expressions.push(
            lake.name === 'birth_year'
              ? `CAST(CASE WHEN ${age} >= 90 THEN NULL ELSE year(${input}) END AS SMALLINT)${as}`
              : `CAST(LEAST(${age}, 90) AS SMALLINT)${as}`,
          );
          break;
        }
        case 'event_date':
          expressions.push(`${this.#generaliseDate(input, column.type)}${as}`);
          break;
        case 'zip': {
          const zip = zipSql(sql, input, column.fiveDigit).value;
          const prefix = `substr(${zip}, 1, 3)`;
          expressions.push(
            `CASE WHEN ${zipIsValidSql(sql, zip)} THEN CASE WHEN ${sql.isOneOf(prefix, restricted)} THEN '000' ELSE ${prefix} END END${as}`,
          );
          break;
        }
        case 'measure':
          if (!column.allowText) expressions.push(`${input}${as}`);
          else if (lake.name === column.name)
            expressions.push(`TRY_CAST(${input} AS ${type})${as}`);
          else {
            expressions.push(
              `CASE WHEN ${redacted(column.name)} THEN NULL WHEN TRY_CAST(${input} AS DOUBLE) IS NULL THEN ${input} END${as}`,
            );
          }
          break;
        case 'free_text':
          expressions.push(`CASE WHEN ${redacted(column.name)} THEN NULL ELSE ${input} END${as}`);
          break;
        default:
          expressions.push(`${input}${as}`);
      }
    }
    return expressions;
  }

  /**
   * A lake column of the converted measure or of its unit, as SQL; undefined for the text of
   * a result in words and for every other column, which the general rules write.
   */
  #convertedValue(lakeName: string, columnName: string): string | undefined {
    const units = this.#units;
    const columns = this.#rules.units;
    if (!units || !columns) return undefined;
    if (columnName === columns.measure.column?.name) {
      if (lakeName === columnName) return units.canonical();
      if (lakeName === `${columnName}_as_sent`) return units.valueSent();
      if (lakeName === `${columnName}_flag`) return units.flag();
    }
    if (columnName === columns.unit?.column?.name) {
      if (lakeName === columnName) return units.unit();
      if (lakeName === `${columnName}_as_sent`) return units.unitSent();
    }
    return undefined;
  }

  /**
   * Per code, the numbers whose unit could not be converted (from the upload's unit pairs) and
   * the implausible ones that were rejected (from the problems; those kept are flagged in the
   * lake, and counted with the rest of the code's profile).
   */
  async #unitCounts(): Promise<Map<string, { unconvertible: number; implausible: number }>> {
    const counts = new Map<string, { unconvertible: number; implausible: number }>();
    const units = this.#units;
    if (!units) return counts;
    for (const pair of this.#unconvertibleUnits) {
      const count = counts.get(pair.code) ?? { unconvertible: 0, implausible: 0 };
      counts.set(pair.code, { ...count, unconvertible: count.unconvertible + pair.values });
    }
    const rejected = this.#rowRules.findIndex((rule) => rule.kind === 'implausible_value');
    const code = this.#rules.units?.code;
    const implausible =
      rejected < 0 || !code
        ? []
        : await this.#runner.rows<{ code: string; n: bigint | number }>(
            `SELECT s.${columnAlias(code)} AS code, count(*) AS n FROM problems p JOIN accepted s ON p.record = s.record WHERE p.rule = ${rejected} GROUP BY 1`,
          );
    for (const row of implausible) {
      const count = counts.get(String(row.code)) ?? { unconvertible: 0, implausible: 0 };
      counts.set(String(row.code), { ...count, implausible: Number(row.n) });
    }
    return counts;
  }

  /**
   * Rows read dated outside the upload's month and outside the contract's window, and ZIP
   * codes padded or stored empty: one pass over the staged rows for every figure the contract
   * has, where a pass per figure read them twice on the benchmark's contract.
   */
  async #datesAndZipCounts(): Promise<DatesAndZipCounts> {
    const reference = this.#rules.ageReference() ?? this.#rules.byRole('event_date')[0];
    const month = `DATE '${this.#request.plan.month}-01'`;
    const outsideMonth = reference
      ? `${this.#sql.timeBucket(columnAlias(reference), 'month')} <> ${month}`
      : undefined;
    const window = this.#rules.outsideWindowSql();
    const zipSource = this.#rules.byRole('zip')[0];
    const zipColumn = zipSource?.column;
    const zip =
      zipSource && zipColumn?.role === 'zip'
        ? zipSql(this.#sql, columnAlias(zipSource), zipColumn.fiveDigit)
        : undefined;
    if (!outsideMonth && !window && !zip) return { eventsOutsideMonth: 0 };
    const [row] = await this.#runner.rows(`SELECT
        count(CASE WHEN ${outsideMonth ?? 'false'} THEN 1 END) AS outside_month,
        count(CASE WHEN ${window ?? 'false'} THEN 1 END) AS outside_window,
        count(CASE WHEN ${zip?.padded ?? 'false'} THEN 1 END) AS padded,
        count(CASE WHEN ${zip?.emptied ?? 'false'} THEN 1 END) AS emptied
      FROM accepted`);
    return {
      eventsOutsideMonth: Number(row?.outside_month ?? 0),
      ...(window ? { eventsOutsideWindow: Number(row?.outside_window ?? 0) } : {}),
      ...(zip
        ? { zipCodes: { padded: Number(row?.padded ?? 0), emptied: Number(row?.emptied ?? 0) } }
        : {}),
    };
  }

  /** An event date as the dataset's date policy keeps it. */
  #generaliseDate(input: string, type: 'date' | 'timestamp'): string {
    switch (this.#request.plan.contract.datePolicy) {
      case 'year':
        return this.#sql.timeBucket(input, 'year');
      case 'year_month':
        return this.#sql.timeBucket(input, 'month');
      case 'shift':
        return this.#sql.addDays(input, 'p.shift_days', type);
      default:
        return input;
    }
  }

  /** What each file written holds, for the catalog (release-file-stats.ts). */
  #fileStats(files: readonly string[]): Promise<ReleaseFileStats[]> {
    return readReleaseFileStats(
      this.#runner,
      this.#request.plan.contract,
      this.#request.target,
      files,
    );
  }

  /**
   * Figures for the data-quality report, read back from the Parquet just written (and from its
   * dictionary pairs, where they are written).
   */
  async #profile(
    pairsWritten: boolean,
  ): Promise<Extract<IngestOutcome, { status: 'written' }>['profile']> {
    const { store, folder } = this.#request.target;
    const contract = this.#request.plan.contract;
    const sql = {
      files: this.#sql.parquetFiles(releaseFilesGlob(store.locate(folder))),
      quote: (name: string) => this.#sql.quoteIdentifier(name),
      asText: (expression: string) => this.#sql.castToText(expression),
      asDouble: (expression: string) => `CAST(${expression} AS DOUBLE)`,
      quartiles: (expression: string) => this.#sql.quartiles(expression),
    };
    const totals =
      (pairsWritten ? await this.#totalsFromFooters() : undefined) ??
      (await this.#runner.rows(totalsQuery(contract, sql)))[0];
    const codes = codesQuery(contract, sql);
    const { unitCounts, rejectedByReason, redactedValues, datesAndZip } = this.#figures;
    if (!unitCounts || !rejectedByReason || redactedValues === undefined || !datesAndZip) {
      throw new Error("the staged rows' figures are computed beside the vault, before the report");
    }
    const profiled = {
      ...totalsOf(contract, totals),
      codes: codes
        ? (await this.#runner.rows(codes)).map((row) => {
            const profile = codeProfileOf(row);
            if (!this.#units) return profile;
            const counts = unitCounts.get(profile.code) ?? { unconvertible: 0, implausible: 0 };
            const flagged = Number(row.implausible_count ?? 0);
            return { ...profile, ...counts, implausible: counts.implausible + flagged };
          })
        : [],
    };

    return {
      ...profiled,
      rejectedRows: this.#rejected.rows,
      rejectedByReason,
      rejectedSamples: this.#rejected.problems,
      redactedValues,
      ...datesAndZip,
      ...(this.#units ? { unconvertibleUnits: this.#unconvertibleUnits.slice(0, 100) } : {}),
    };
  }

  /**
   * The totals row (totalsQuery's columns) without reading the release's rows: its rows and
   * each column's empty values as the files' footers record them, its patients and the most
   * rows one patient has from the dictionary pairs just written (a pair holds one patient's rows
   * of one code). The totals query reads every column of every row: 1.8 s of CPU on the 1 GB
   * month, against 0.03 s for the footers and 0.6 s for the pairs (load 8). Undefined where
   * the engine reads no footers, or a footer lacks a count, or footers and pairs disagree on
   * the rows: the rows are then counted.
   */
  async #totalsFromFooters(): Promise<Record<string, unknown> | undefined> {
    const { store, folder } = this.#request.target;
    const query = this.#sql.parquetColumnCounts?.(releaseFilesGlob(store.locate(folder)));
    if (!query) return undefined;
    type Counts = { name: string; row_count: bigint | number; nulls: bigint | number | null };
    const recorded = new Map(
      (await this.#runner.rows<Counts & { unrecorded: bigint | number }>(query))
        .filter((column) => Number(column.unrecorded) === 0 && column.nulls !== null)
        .map((column) => [column.name, column]),
    );
    const pairs = this.#sql.parquetFiles(store.locate(dictionaryPairsKey(folder)));
    const [patients] = await this.#runner.rows<{
      row_count: bigint | number | null;
      patients: bigint | number;
      most: bigint | number | null;
    }>(`SELECT sum(n) AS row_count, count(patient) AS patients, max(n) AS most
      FROM (SELECT patient, sum(row_count) AS n FROM ${pairs} GROUP BY patient) AS per_patient`);
    const rows = Number(patients?.row_count ?? 0);
    const columns = lakeColumns(this.#request.plan.contract).flatMap((column) => {
      const counted = recorded.get(column.name);
      return counted && Number(counted.row_count) === rows ? [counted] : [];
    });
    if (columns.length !== lakeColumns(this.#request.plan.contract).length) return undefined;
    return {
      total_rows: rows,
      total_patients: Number(patients?.patients ?? 0),
      max_rows_per_patient: Number(patients?.most ?? 0),
      ...Object.fromEntries(columns.map((column, index) => [`null_${index}`, column.nulls])),
    };
  }

  async #count(query: string): Promise<number> {
    const [row] = await this.#runner.rows<{ n: bigint | number }>(query);
    return Number(row?.n ?? 0);
  }

  /**
   * Runs a long piece of work, reporting its progress while it runs: the engine's share of the
   * work done and, where that share is one of rows, the rows it stands for (estimated from the
   * total given, then counted where `count` is given).
   */
  async #timed<T>(
    phase: IngestPhase,
    total: number | null,
    work: (onPercent: (percent: number) => void) => Promise<T>,
    count?: () => Promise<number>,
  ): Promise<T> {
    const started = performance.now();
    const rowsTotal = this.#runner.progressOfRows ? total : null;
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
    const result = await work((percent) => report(Math.min(percent, 100)));
    const rows = count && this.#runner.progressOfRows ? await count() : rowsTotal;
    this.#progress(
      phase,
      100,
      rows === null ? null : { rows, total: rows, estimated: false, started },
    );
    return result;
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
      // Where the engine cannot tell rows, its figures are estimates of work.
      estimated: rows ? (rows.estimated ?? false) : !this.#runner.progressOfRows,
      counting: rows?.counting ?? 'rows',
    });
  }
}
