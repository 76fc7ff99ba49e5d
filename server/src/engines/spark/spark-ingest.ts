import {
  lakeColumns,
  type IngestProblem,
  type IngestProblemCode,
  type SourceType,
} from '@medlake/shared';
import { Int32, Table, Utf8, vectorFromArray } from 'apache-arrow';
import { AppError } from '../../errors.ts';
import type { SourceColumn } from '../../ingest/ingest-plan.ts';
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
import { locateRecords } from '../../ingest/locate-records.ts';
import {
  codeProfileOf,
  codesQuery,
  totalsOf,
  totalsQuery,
  type ProfileSql,
} from '../../ingest/quality-profile.ts';
import type { IngestEngine, IngestOutcome, IngestPhase, IngestRequest } from '../types.ts';
import { rowsOf } from './arrow-json.ts';
import { parseConnectUrl } from './connect-url.ts';
import { SparkConnectClient } from './spark-connect-client.ts';
import { sessionSettings } from './spark-engine.ts';
import { sparkPath, writeReleaseFiles } from './spark-files.ts';

/** The Spark type each contract source type is read as. */
const sparkTypes: Record<SourceType | 'smallint', string> = {
  varchar: 'STRING',
  integer: 'BIGINT',
  double: 'DOUBLE',
  boolean: 'BOOLEAN',
  date: 'DATE',
  // Without a time zone, as DuckDB's TIMESTAMP: an offset in the text is ignored by both.
  timestamp: 'TIMESTAMP_NTZ',
  smallint: 'SMALLINT',
};

/** How much of the landed CSV each task of the later passes works on. */
const bytesPerPartition = 128 * 1024 * 1024;

/**
 * How many bytes of CSV make one byte of Parquet, at the least: de-identified columns are
 * fewer, and Parquet compresses the rest (the Synthea export shrinks about 48 times).
 * Underestimating keeps files at or below the configured size.
 */
const csvBytesPerParquetByte = 10;

/** How many pseudonyms travel in one message: well under Spark Connect's message limit. */
const pseudonymsPerMessage = 100_000;

/** Where a word ends, for matching names in text; ASCII letters and digits, as on DuckDB. */
const wordBreak = '[^a-z0-9]+';

/**
 * Ingest on Spark, through Spark Connect, with the same rules as on DuckDB:
 * 1. Spark reads the landed CSV, every field as text, numbering the records in file order
 *    (the file is read whole, as one split, so that values may span lines); records it cannot
 *    read and values that do not cast to the contract's type are problems with their record;
 * 2. the row rules run as SQL; the distinct patient ids come back to medlake, whose vault
 *    gives their pseudonyms, which go to Spark as a table of this session only;
 * 3. Spark writes the de-identified columns as Parquet, joined with that table, and profiles
 *    what it wrote.
 * Lines are found for the records of the reported problems by reading the landed file again
 * here. Real identifiers live in the session's cached tables, which are dropped at the end.
 */
export function createSparkIngestEngine(options: { url: string }): IngestEngine {
  const target = parseConnectUrl(options.url);
  return {
    kind: 'spark',
    async ingest(request) {
      const client = new SparkConnectClient(target);
      const run = new SparkIngestRun(client, request);
      try {
        for (const setting of sessionSettings) await client.sql(setting);
        return await run.run();
      } catch (error) {
        throw withoutValues(error);
      } finally {
        await run.dropCaches().catch(() => undefined);
        await client.close();
      }
    },
  };
}

/**
 * An error of Spark with every quoted fragment blanked: Spark quotes the values it failed on,
 * and in an ingest those may be a patient's.
 */
export function withoutValues(error: unknown): unknown {
  if (!(error instanceof AppError)) return error;
  const message = error.message.replace(/'[^']*'|"[^"]*"/g, "'…'");
  return message === error.message ? error : new AppError(error.code, message);
}

type ProblemRow = {
  record: number;
  position: number | null;
  code: IngestProblemCode;
  rule: number;
};

class SparkIngestRun {
  readonly #client: SparkConnectClient;
  readonly #request: IngestRequest;
  readonly #rules: IngestRules;
  readonly #rowRules: RowRule[];
  readonly #source: SourceColumn[];
  /** Named arguments of every statement: values (patterns, keys) never enter SQL text. */
  readonly #args: Record<string, unknown> = {};
  #cached: string[] = [];
  /** How many partitions the upload's rows are spread over, from the size of the CSV. */
  #partitions = 1;
  #rejected: { rows: number; problems: IngestProblem[] } = { rows: 0, problems: [] };
  #redactedPositions = new Set<number>();

  constructor(client: SparkConnectClient, request: IngestRequest) {
    this.#client = client;
    this.#request = request;
    this.#rules = new IngestRules(request.plan);
    this.#rowRules = this.#rules.rowRules();
    this.#source = this.#rules.source;
  }

  async run(): Promise<IngestOutcome> {
    await this.#read();
    await this.#checkRows();
    const failure = await this.#failureIfAny();
    if (failure) return failure;
    await this.#handOverPseudonyms();
    const files = await this.#write();
    return { status: 'written', files, profile: await this.#profile() };
  }

  async dropCaches(): Promise<void> {
    for (const table of this.#cached) await this.#client.sql(`UNCACHE TABLE IF EXISTS ${table}`);
    this.#cached = [];
  }

  /**
   * Pass 1: the CSV as text, one row per record with its number, the problems of reading it,
   * the kept columns typed and, for scanned text, whether it holds its row's own identifiers.
   */
  async #read(): Promise<void> {
    const plan = this.#request.plan;
    const columns = this.#source.map((source) => `${columnAlias(source)} STRING`).join(', ');
    const delimiter = plan.contract.delimiter === '\t' ? '\\t' : plan.contract.delimiter;
    if (!/^(\\t|[,;|])$/.test(delimiter)) {
      throw new AppError('INTERNAL', 'Spark ingest reads files separated by , ; | or tab');
    }
    // A data source with options is a statement of its own; it takes no parameters.
    await this.#sql(`
      CREATE OR REPLACE TEMPORARY VIEW landed (${columns}, malformed STRING)
      USING csv OPTIONS (
        path '${sparkPath(this.#request.source)}', header 'true', enforceSchema 'true',
        multiLine 'true', mode 'PERMISSIVE', columnNameOfCorruptRecord 'malformed',
        sep '${delimiter}', quote '"', escape '"', encoding 'UTF-8',
        nullValue '', emptyValue '', ignoreLeadingWhiteSpace 'false',
        ignoreTrailingWhiteSpace 'false')`);

    // Empty fields are missing values, as DuckDB reads them.
    const texts = this.#source
      .map((source) => `nullif(${columnAlias(source)}, '') AS ${columnAlias(source)}`)
      .join(', ');
    this.#args.field_break = `\\Q${plan.contract.delimiter}\\E(?=(?:[^"]*"[^"]*")*[^"]*$)`;
    this.#args.replacement = '\uFFFD';
    const typed = this.#rules.kept.map(
      (source) => `${this.#typed(source)} AS ${columnAlias(source)}`,
    );
    // The file is read as one split; its rows are then spread over the cluster.
    const size = this.#request.sourceBytes;
    const partitions = Math.max(1, Math.ceil(size / bytesPerPartition));
    this.#partitions = partitions;
    // Shuffles (distinct records, the names join) sized to the upload, not to Spark's default
    // of 200, which makes a small month hundreds of empty tasks.
    await this.#sql(`SET spark.sql.shuffle.partitions = ${2 * partitions}`);
    await this.#cache(
      'staged',
      'reading',
      `
      SELECT /*+ REPARTITION(${partitions}) */ record, ${this.#readProblems()} AS read_problems,
        ${[...typed, ...this.#rules.ownIdentifierFlagsSql()].join(',\n')}
      FROM (SELECT monotonically_increasing_id() AS record, ${texts}, malformed FROM landed)`,
    );
    await this.#view('accepted', 'SELECT * FROM staged WHERE size(read_problems) = 0');
  }

  /**
   * What went wrong reading a record, as (position, code) pairs: a record Spark could not split
   * into the header's fields (told apart by its quotes and fields), bytes that were not UTF-8
   * (which Spark reads as U+FFFD), or values that do not cast to their type.
   */
  #readProblems(): string {
    const expected = this.#source.length;
    const problem = (position: string, code: string) =>
      `named_struct('position', ${position}, 'code', ${code})`;
    const fields = 'size(split(malformed, :field_break, -1))';
    const malformedCode = `CASE
      WHEN size(split(malformed, '"', -1)) % 2 = 0 THEN 'unterminated_quote'
      WHEN ${fields} < ${expected} THEN 'missing_fields'
      WHEN ${fields} > ${expected} THEN 'extra_fields'
      ELSE 'invalid_value' END`;
    const all = this.#source.map((source) => columnAlias(source)).join(', ');
    const invalid = this.#source
      .filter((source) => source.readAs !== 'varchar')
      .map(
        (source) =>
          `IF(${columnAlias(source)} IS NOT NULL AND ${this.#typed(source)} IS NULL, ${problem(String(source.position), "'invalid_value'")}, NULL)`,
      );
    const invalidValues =
      invalid.length > 0
        ? `filter(array(${invalid.join(', ')}), p -> p IS NOT NULL)`
        : `array_remove(array(${problem('CAST(NULL AS INT)', "'invalid_value'")}), NULL)`;
    return `CASE
      WHEN malformed IS NOT NULL THEN array(${problem('CAST(NULL AS INT)', malformedCode)})
      WHEN contains(concat_ws('', ${all}), :replacement) THEN array(${problem('CAST(NULL AS INT)', "'invalid_encoding'")})
      ELSE ${invalidValues} END`;
  }

  /** A column's text as its contract type; NULL where it does not cast. */
  #typed(source: SourceColumn): string {
    const text = columnAlias(source);
    switch (source.readAs) {
      case 'varchar':
        return text;
      case 'integer':
        // As DuckDB: "12.5" is 13, "1e3" is 1000.
        return `try_cast(try_cast(${text} AS DECIMAL(38, 0)) AS BIGINT)`;
      default:
        return `try_cast(${text} AS ${sparkTypes[source.readAs]})`;
    }
  }

  /** Pass 2a: every problem, read or rule, as one cached table. */
  async #checkRows(): Promise<void> {
    if (this.#rowRules.some((rule) => rule.kind === 'patient_name')) {
      const values = this.#rules.nameColumns
        .map((source) => `SELECT ${columnAlias(source)} AS value FROM accepted`)
        .join(' UNION ALL ');
      this.#args.word_break = wordBreak;
      await this.#view(
        'upload_names',
        `SELECT DISTINCT token AS name FROM (
          SELECT explode(split(lower(value), :word_break)) AS token FROM (${values})
        ) WHERE length(token) >= ${minimumNameLength}`,
      );
    }
    // Rules on a row's own values are tested in one pass without a shuffle; only names, which
    // are matched against the whole upload, need a join.
    const ownRowRules = this.#rowRules.flatMap((rule, index) => {
      const condition = this.#condition(rule, index);
      return condition === undefined
        ? []
        : [
            `IF(${condition}, named_struct('position', ${rule.position}, 'code', '${rule.code}', 'rule', ${index}, 'action', '${rule.action}'), NULL)`,
          ];
    });
    const parts = [
      "SELECT record, p.position AS position, p.code AS code, -1 AS rule, 'reject' AS action FROM staged LATERAL VIEW explode(read_problems) r AS p",
      ...(ownRowRules.length > 0
        ? [
            `SELECT record, h.position AS position, h.code AS code, h.rule AS rule, h.action AS action FROM accepted LATERAL VIEW explode(filter(array(${ownRowRules.join(', ')}), h -> h IS NOT NULL)) r AS h`,
          ]
        : []),
      ...this.#rowRules.flatMap((rule, index) => {
        if (rule.kind !== 'patient_name') return [];
        const text = scannedTextSql(rule.text);
        return [
          `SELECT DISTINCT t.record AS record, ${rule.position} AS position, '${rule.code}' AS code, ${index} AS rule, '${rule.action}' AS action
           FROM (SELECT record, explode(split(lower(${text}), :word_break)) AS token FROM accepted WHERE ${text} IS NOT NULL) t
           JOIN upload_names n ON t.token = n.name`,
        ];
      }),
    ];
    // Problems are few: as many partitions as the rows, not one per part of the union.
    await this.#cache(
      'problems',
      'checking',
      `SELECT /*+ COALESCE(${this.#partitions}) */ * FROM (${parts.join('\nUNION ALL\n')})`,
    );
  }

  /** A rule on a row's own values in Spark SQL; undefined for a rule that needs a join. */
  #condition(rule: RowRule, index: number): string | undefined {
    switch (rule.kind) {
      case 'missing':
        return `${columnAlias(rule.column)} IS NULL`;
      case 'birth_after_event':
        return `coalesce(${columnAlias(rule.birth)} > CAST(${columnAlias(rule.reference)} AS DATE), false)`;
      case 'pattern':
        this.#args[`pattern_${index}`] = rule.pattern;
        return `coalesce(${scannedTextSql(rule.text)} RLIKE :pattern_${index}, false)`;
      case 'own_identifier':
        return `hit_${rule.text.source.position}`;
      case 'patient_name':
        return undefined;
    }
  }

  /** Decides whether the file fails, and if so with which problems. */
  async #failureIfAny(): Promise<IngestOutcome | undefined> {
    const [counts] = await this.#rows(`
      SELECT
        (SELECT count(*) FROM accepted) AS accepted,
        (SELECT count(DISTINCT record) FROM problems WHERE rule < 0) AS structural,
        (SELECT count(DISTINCT record) FROM problems WHERE rule >= 0 AND action <> 'redact') AS semantic,
        (SELECT count(*) FROM problems WHERE action = 'reject_file') AS fatal,
        (SELECT count(*) FROM problems WHERE action <> 'redact') AS problems`);
    const accepted = Number(counts?.accepted ?? 0);
    const semanticRows = Number(counts?.semantic ?? 0);
    const rejectedRows = Number(counts?.structural ?? 0) + semanticRows;
    const problems = await this.#problems(this.#request.maxReportedProblems);
    this.#rejected = { rows: rejectedRows, problems };
    this.#redactedPositions = new Set(
      (await this.#rows("SELECT DISTINCT position FROM problems WHERE action = 'redact'")).map(
        (row) => Number(row.position),
      ),
    );
    const failure = failureOf(this.#request.plan, {
      accepted,
      rejectedRows,
      semanticRows,
      fatal: Number(counts?.fatal ?? 0),
    });
    if (failure === 'header_only') return headerOnly;
    if (failure === 'rejected') {
      return {
        status: 'rejected',
        problems,
        problemCount: Number(counts?.problems ?? 0),
        rejectedRows,
      };
    }
    return undefined;
  }

  /** The first problems in file order, each with line, column and a message without values. */
  async #problems(limit: number): Promise<IngestProblem[]> {
    const rows = (
      await this.#rows(
        `SELECT record, position, code, rule FROM problems WHERE action <> 'redact' ORDER BY record, position NULLS FIRST LIMIT ${limit}`,
      )
    ).map((row): ProblemRow => ({
      record: Number(row.record),
      position: row.position === null ? null : Number(row.position),
      code: row.code as IngestProblemCode,
      rule: Number(row.rule),
    }));
    if (rows.length === 0) return [];
    // Spark numbers every record it read, readable or not: no line is left out of the count.
    const located = await locateRecords(
      await this.#request.openSource(),
      this.#request.plan.contract.delimiter,
      rows.map((row) => row.record),
      new Set(),
    );
    return rows.map((row) => {
      const source = row.position === null ? undefined : this.#source[row.position - 1];
      const message =
        row.rule >= 0
          ? (this.#rowRules[row.rule]?.message ?? row.code)
          : readProblemMessage(row.code, source, this.#source.length);
      const line = located.get(row.record);
      return {
        code: row.code,
        line: line ?? lineOfRecord(row.record),
        column: row.position,
        header: source?.header ?? null,
        message: line === undefined ? `${message}${approximateLine}` : message,
      };
    });
  }

  /**
   * Pass 2b: the vault's pseudonyms for the distinct patient ids, handed to Spark as a table of
   * this session, in messages of a bounded size.
   */
  async #handOverPseudonyms(): Promise<void> {
    this.#progress('pseudonymizing', null);
    const patient = columnAlias(this.#rules.patient());
    const ids = (
      await this.#rows(
        `SELECT DISTINCT ${patient} AS id FROM accepted WHERE ${patient} IS NOT NULL`,
      )
    ).map((row) => String(row.id));
    const parts: string[] = [];
    // One message's worth of ids at a time through the vault, as on DuckDB: given whole, a
    // month of a million new patients would cost gigabytes of heap in the vault's work.
    for (let start = 0; start === 0 || start < ids.length; start += pseudonymsPerMessage) {
      const chunk = [
        ...(await this.#request.pseudonymizePatients(
          ids.slice(start, start + pseudonymsPerMessage),
        )),
      ];
      const name = `patient_map_${parts.length}`;
      await this.#client.createView(
        name,
        pseudonymTable(chunk),
        'real STRING, pseudonym STRING, shift_days INT',
      );
      parts.push(`SELECT * FROM ${name}`);
    }
    await this.#sql(`CREATE OR REPLACE TEMPORARY VIEW patient_map AS ${parts.join(' UNION ALL ')}`);
  }

  /**
   * Pass 3: the de-identified columns, for every row without a problem, to Parquet files of
   * about the configured size, estimated from the size of the CSV.
   */
  async #write(): Promise<string[]> {
    const patient = columnAlias(this.#rules.patient());
    const expressions = this.#outputExpressions();
    const size = this.#request.sourceBytes;
    const files = Math.max(1, Math.ceil(size / (this.#request.fileBytes * csvBytesPerParquetByte)));
    const { store, folder } = this.#request.target;
    return writeReleaseFiles(store, folder, (directory) =>
      this.#sql(
        `
      INSERT OVERWRITE DIRECTORY '${directory}' USING parquet OPTIONS (compression 'snappy')
      SELECT /*+ REPARTITION(${files}) */ ${expressions.join(',\n')}
      FROM accepted s
      JOIN patient_map p ON s.${patient} = p.real
      LEFT ANTI JOIN (SELECT record FROM problems WHERE action <> 'redact') x ON s.record = x.record
      LEFT JOIN (
        SELECT record, collect_set(position) AS positions FROM problems WHERE action = 'redact' GROUP BY record
      ) d ON s.record = d.record`,
        'writing',
      ),
    );
  }

  /** The SELECT list of the lake columns, in Spark SQL, as DuckDB writes them. */
  #outputExpressions(): string[] {
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
    const restricted = plan.restrictedZip3.map((prefix) => `'${prefix}'`).join(', ') || "''";
    const redacted = (name: string) => {
      const source = bySourceName.get(name);
      return source && this.#redactedPositions.has(source.position)
        ? `coalesce(array_contains(d.positions, ${source.position}), false)`
        : 'false';
    };

    return lakeColumns(plan.contract).map((lake, index) => {
      const column = plan.contract.columns.find((candidate) => candidate.name === lake.source);
      const input = value(lake.source);
      const as = ` AS \`${lake.name}\``;
      const lakeType = sparkTypes[lake.type as SourceType | 'smallint'] ?? 'STRING';
      if (!column || input === undefined) return `CAST(NULL AS ${lakeType})${as}`;
      switch (column.role) {
        case 'patient_id':
          return `p.pseudonym${as}`;
        case 'direct_identifier':
          // The same keyed hash as on DuckDB; the key is a bound argument, never SQL text.
          this.#args[`linkage_${index}`] =
            `${this.#request.linkageKey}|${this.#request.idSpace}|${column.name}|`;
          this.#args[`linkage_prefix_${index}`] = `${column.name.slice(0, 3)}_`;
          return `CASE WHEN ${input} IS NULL THEN NULL ELSE concat(:linkage_prefix_${index}, substr(sha2(concat(:linkage_${index}, ${input}), 256), 1, 24)) END${as}`;
        case 'birth_date': {
          const age = completeYears(input, referenceDate);
          return lake.name === 'birth_year'
            ? `CAST(CASE WHEN ${age} >= 90 THEN NULL ELSE year(${input}) END AS SMALLINT)${as}`
            : `CAST(LEAST(${age}, 90) AS SMALLINT)${as}`;
        }
        case 'event_date':
          return `${generaliseDate(input, column.type, plan.contract.datePolicy)}${as}`;
        case 'zip':
          return `CASE WHEN ${input} RLIKE '^[0-9]{5}(-[0-9]{4})?$' THEN CASE WHEN substr(${input}, 1, 3) IN (${restricted}) THEN '000' ELSE substr(${input}, 1, 3) END END${as}`;
        case 'measure':
          if (!column.allowText) return `${input}${as}`;
          return lake.name === column.name
            ? `try_cast(${input} AS ${lakeType})${as}`
            : `CASE WHEN ${redacted(column.name)} THEN NULL WHEN try_cast(${input} AS DOUBLE) IS NULL THEN ${input} END${as}`;
        case 'free_text':
          return `CASE WHEN ${redacted(column.name)} THEN NULL ELSE ${input} END${as}`;
        default:
          return `${input}${as}`;
      }
    });
  }

  /** Figures for the data-quality report, read back from the Parquet just written. */
  async #profile(): Promise<Extract<IngestOutcome, { status: 'written' }>['profile']> {
    this.#progress('profiling', null);
    const contract = this.#request.plan.contract;
    const sql: ProfileSql = {
      files: `parquet.\`${sparkPath(this.#request.target.store.locate(this.#request.target.folder))}\``,
      quote: (name) => `\`${name.replaceAll('`', '``')}\``,
      asText: (expression) => `CAST(${expression} AS STRING)`,
      asDouble: (expression) => `CAST(${expression} AS DOUBLE)`,
      quartiles: (expression) => `percentile(${expression}, array(0.25, 0.5, 0.75))`,
    };
    const [totals] = await this.#rows(totalsQuery(contract, sql));
    const codes = codesQuery(contract, sql);
    const profiled = {
      ...totalsOf(contract, totals),
      codes: codes ? (await this.#rows(codes)).map(codeProfileOf) : [],
    };

    const reference = this.#rules.ageReference() ?? this.#rules.byRole('event_date')[0];
    this.#args.month = this.#request.plan.month;
    const [outside] = reference
      ? await this.#rows(
          `SELECT count(*) AS n FROM accepted WHERE date_format(${columnAlias(reference)}, 'yyyy-MM') <> :month`,
        )
      : [];
    const rejectedByReason: Record<string, number> = {};
    const reasons = await this.#rows(`
      SELECT code, count(DISTINCT record) AS n FROM problems WHERE rule < 0 GROUP BY code
      UNION ALL
      SELECT code, count(DISTINCT record) AS n FROM problems WHERE rule >= 0 AND action <> 'redact' GROUP BY code`);
    for (const row of reasons) {
      const code = String(row.code);
      rejectedByReason[code] = (rejectedByReason[code] ?? 0) + Number(row.n);
    }
    const [redactions] = await this.#rows(
      "SELECT count(*) AS n FROM (SELECT DISTINCT record, position FROM problems WHERE action = 'redact')",
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

  /** Caches a query's rows as a view of the session, spilling to disk when memory is short. */
  async #cache(name: string, phase: IngestPhase, query: string): Promise<void> {
    await this.#view(name, query);
    this.#cached.push(name);
    await this.#sql(`CACHE TABLE ${name} OPTIONS ('storageLevel' 'MEMORY_AND_DISK')`, phase);
  }

  /** Names a query as a view of the session; statements that make views take no parameters. */
  async #view(name: string, query: string): Promise<void> {
    await this.#client.createQueryView(name, query, this.#argumentsOf(query));
  }

  /** Runs a statement with the arguments it names; reports Spark's progress in a phase. */
  async #sql(query: string, phase?: IngestPhase): Promise<Table> {
    if (phase) this.#progress(phase, 0);
    const result = await this.#client.sql(query, this.#argumentsOf(query), {
      onProgress: phase ? (percent) => this.#progress(phase, percent) : undefined,
    });
    if (phase) this.#progress(phase, 100);
    return result;
  }

  /** The named arguments a statement uses: Spark refuses ones it does not. */
  #argumentsOf(query: string): Record<string, unknown> {
    return Object.fromEntries(
      Object.entries(this.#args).filter(([name]) => new RegExp(`:${name}\\b`).test(query)),
    );
  }

  async #rows(query: string): Promise<Array<Record<string, unknown>>> {
    return rowsOf(await this.#sql(query));
  }

  #progress(phase: IngestPhase, percent: number | null): void {
    // Spark Connect reports its stages' tasks, not rows.
    this.#request.onProgress?.({
      phase,
      percent,
      rowsProcessed: null,
      rowsTotal: null,
      rowsPerSecond: null,
      estimated: true,
      counting: 'rows',
    });
  }
}

/** Whole years from one date to another, counted as DuckDB's date_sub('year', …) counts them. */
function completeYears(from: string, to: string): string {
  // A month counts once its day is reached, or when `to` is the last day of its month (so that
  // the 29th of February has its birthday on the 28th in other years).
  const months = `((year(${to}) - year(${from})) * 12 + month(${to}) - month(${from}) - CASE WHEN day(${to}) < day(${from}) AND ${to} <> last_day(${to}) THEN 1 ELSE 0 END)`;
  return `(${months} div 12)`;
}

function generaliseDate(input: string, type: 'date' | 'timestamp', policy: string): string {
  switch (policy) {
    case 'year':
      return `trunc(CAST(${input} AS DATE), 'YEAR')`;
    case 'year_month':
      return `trunc(CAST(${input} AS DATE), 'MM')`;
    case 'shift':
      return type === 'date'
        ? `date_add(${input}, p.shift_days)`
        : `(${input} + make_dt_interval(p.shift_days))`;
    default:
      return input;
  }
}

function pseudonymTable(
  entries: ReadonlyArray<[string, { pseudonym: string; shiftDays: number }]>,
): Table {
  return new Table({
    real: vectorFromArray(
      entries.map(([real]) => real),
      new Utf8(),
    ),
    pseudonym: vectorFromArray(
      entries.map(([, entry]) => entry.pseudonym),
      new Utf8(),
    ),
    shift_days: vectorFromArray(
      entries.map(([, entry]) => entry.shiftDays),
      new Int32(),
    ),
  });
}
