import type { SourceType } from '@medlake/shared';
import { AppError } from '../../errors.ts';
import type { SourceColumn } from '../../ingest/ingest-plan.ts';
import type { CsvRead, CsvReader, IngestDialect } from '../../ingest/ingest-runner.ts';
import { columnAlias } from '../../ingest/ingest-rules.ts';
import { sparkDialect } from './spark-dialect.ts';
import { sparkPath } from './spark-files.ts';

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
export const bytesPerPartition = 128 * 1024 * 1024;

/** How many partitions an upload's rows are spread over, from the size of its CSV. */
export function partitionsOf(sizeBytes: number): number {
  return Math.max(1, Math.ceil(sizeBytes / bytesPerPartition));
}

/** A Spark string literal: Spark reads a backslash in one as an escape. */
function literal(value: string): string {
  return `'${value.replace(/[\\']/g, (character) => `\\${character}`)}'`;
}

/** Spark SQL for ingest; the same rules as on DuckDB give the same rows. */
export const sparkIngestDialect: IngestDialect = {
  ...sparkDialect,
  typeName: (type) => sparkTypes[type as SourceType | 'smallint'] ?? 'STRING',
  literal,
  readCsv,
  // ASCII letters and digits, as DuckDB's [:alnum:].
  words: (text) => `explode(split(lower(${text}), '[^a-z0-9]+'))`,
  matches: (text, pattern) => `${text} RLIKE ${literal(pattern)}`,
  matchesAll: (text, pattern) => `${text} RLIKE ${literal(`^${pattern}$`)}`,
  isOneOf: (expression, values) => `${expression} IN (${values.map(literal).join(', ')})`,
  collectSet: (expression) => `collect_set(${expression})`,
  arrayContains: (array, value) => `array_contains(${array}, ${value})`,
  sha256Hex: (expression) => `sha2(${expression}, 256)`,
  completeYears,
  quartiles: (expression) => `percentile(${expression}, array(0.25, 0.5, 0.75))`,
  parquetFiles: (glob) => `parquet.\`${sparkPath(glob)}\``,
  parquetFilesNamed: (glob) =>
    `(SELECT *, regexp_extract(_metadata.file_path, '[^/]+$', 0) AS file_name FROM parquet.\`${sparkPath(glob)}\`)`,
  // One pass without a shuffle: the cases that hold for a row, as an array exploded.
  rowsWhere: (from, cases) => {
    const struct = (values: (typeof cases)[number]['values']) =>
      `named_struct(${values.map(([name, value]) => `'${name}', ${value}`).join(', ')})`;
    const names = cases[0]?.values.map(([name]) => `h.${name} AS ${name}`) ?? [];
    const hits = cases.map(({ when, values }) => `IF(${when}, ${struct(values)}, NULL)`);
    return `SELECT record, ${names.join(', ')} FROM ${from} LATERAL VIEW explode(filter(array(${hits.join(', ')}), h -> h IS NOT NULL)) r AS h`;
  },
};

/** The delimiter as the text of a Spark string literal. */
function delimiterOf(read: CsvRead): string {
  const delimiter = read.delimiter === '\t' ? '\\t' : read.delimiter;
  if (!/^(\\t|[,;|])$/.test(delimiter)) {
    throw new AppError('internal', 'Spark ingest reads files separated by , ; | or tab');
  }
  return delimiter;
}

/** Each field's text, where an empty field is a missing value, as DuckDB reads them. */
function textsOf(read: CsvRead): string {
  return read.columns
    .map((source) => `nullif(${columnAlias(source)}, '') AS ${columnAlias(source)}`)
    .join(', ');
}

/**
 * The CSV read by the contract's promise on line breaks: a file whose values may span lines is
 * read whole, in one task; one whose records are each one line is split across tasks.
 */
function readCsv(read: CsvRead): CsvReader {
  return read.multiLineValues ? readWholeCsv(read) : readCsvLines(read);
}

/**
 * The CSV as text, one row per record with its number (the file is read whole, as one split,
 * so that values may span lines, and numbered in file order), the problems of reading each
 * record, and the kept columns typed.
 */
function readWholeCsv(read: CsvRead): CsvReader {
  const columns = read.columns.map((source) => `${columnAlias(source)} STRING`).join(', ');
  const delimiter = delimiterOf(read);
  const texts = textsOf(read);
  const typed = read.kept.map((source) => `${typedSql(source)} AS ${columnAlias(source)}`);
  const partitions = partitionsOf(read.sizeBytes);
  return {
    setup: [
      // A data source with options is a statement of its own.
      `CREATE OR REPLACE TEMPORARY VIEW landed (${columns}, malformed STRING)
      USING csv OPTIONS (
        path '${sparkPath(read.location)}', header 'true', enforceSchema 'true',
        multiLine 'true', mode 'PERMISSIVE', columnNameOfCorruptRecord 'malformed',
        sep '${delimiter}', quote '"', escape '"', encoding 'UTF-8',
        nullValue '', emptyValue '', ignoreLeadingWhiteSpace 'false',
        ignoreTrailingWhiteSpace 'false')`,
      // Shuffles (distinct records, the names join) sized to the upload, not to Spark's
      // default of 200, which makes a small month hundreds of empty tasks.
      `SET spark.sql.shuffle.partitions = ${2 * partitions}`,
    ],
    // The file is read as one split; its rows are then spread over the cluster.
    staged: `
      SELECT /*+ REPARTITION(${partitions}) */ record, ${readProblems(read)} AS read_problems,
        ${[...typed, ...read.flags].join(',\n')}
      FROM (SELECT monotonically_increasing_id() AS record, ${texts}, malformed FROM landed)`,
    accepted: 'SELECT * FROM staged WHERE size(read_problems) = 0',
    problems:
      'SELECT record, CAST(NULL AS BIGINT) AS line, p.position AS position, p.code AS code FROM staged LATERAL VIEW explode(read_problems) r AS p',
  };
}

/**
 * The CSV a line at a time, each split of the file (spark.sql.files.maxPartitionBytes) in a
 * task of its own: a file of tens of GB is read by the whole cluster, not by one task. Lines
 * are read as text and parsed as CSV one by one, which keeps what the CSV source drops: the
 * header is known by its line, not by its split; a line with an odd number of quotes (a value
 * that runs on to the next line, which the contract says none does) is a problem rather than
 * a value cut at its line break; and every line is counted, so that a record is numbered by
 * its line. Within a split, monotonically_increasing_id() counts lines one by one; a small
 * table of the splits, in file order, adds the lines of the splits before.
 */
function readCsvLines(read: CsvRead): CsvReader {
  const schema = [
    ...read.columns.map((source) => `${columnAlias(source)} STRING`),
    'malformed STRING',
  ];
  const options = {
    sep: delimiterOf(read),
    quote: '"',
    escape: '"',
    mode: 'PERMISSIVE',
    columnNameOfCorruptRecord: 'malformed',
    nullValue: '',
    emptyValue: '',
    ignoreLeadingWhiteSpace: 'false',
    ignoreTrailingWhiteSpace: 'false',
  };
  const optionsMap = Object.entries(options)
    .map(([name, value]) => `'${name}', '${value}'`)
    .join(', ');
  const fields = read.columns.map((source) => `r.${columnAlias(source)} AS ${columnAlias(source)}`);
  const typed = read.kept.map((source) => `${typedSql(source)} AS ${columnAlias(source)}`);
  const partitions = partitionsOf(read.sizeBytes);
  // The line of a staged row, from its split's first line.
  const line = 's.id - b.first_id + b.lines_before + 1';
  // An empty line is no record, as DuckDB skips it.
  const numbered = (where: string) =>
    `SELECT ${line} AS record, s.* FROM staged s JOIN line_splits b ON s.split_start = b.split_start
      WHERE NOT s.blank AND ${line} > 1 AND ${where}`;
  return {
    // Shuffles sized to the upload (see readWholeCsv).
    setup: [`SET spark.sql.shuffle.partitions = ${2 * partitions}`],
    staged: `
      SELECT split_start, id, blank, ${readProblems(read, 'odd_quotes')} AS read_problems,
        ${[...typed, ...read.flags].join(',\n')}
      FROM (SELECT split_start, id, blank, odd_quotes, ${textsOf(read)}, malformed
        FROM (SELECT split_start, id, blank, odd_quotes, r.malformed, ${fields.join(', ')}
          FROM (SELECT split_start, id, blank, size(split(value, '"', -1)) % 2 = 0 AS odd_quotes,
              IF(blank, NULL, from_csv(value, '${schema.join(', ')}', map(${optionsMap}))) AS r
            FROM (SELECT input_file_block_start() AS split_start, monotonically_increasing_id() AS id,
                value, value = '' AS blank
              FROM text.\`${sparkPath(read.location)}\`))))`,
    tables: [
      {
        name: 'line_splits',
        query: `SELECT split_start, min(id) AS first_id,
            sum(count(*)) OVER (ORDER BY split_start) - count(*) AS lines_before
          FROM staged GROUP BY split_start`,
      },
    ],
    recordsAreLines: true,
    accepted: numbered('size(s.read_problems) = 0'),
    problems: `SELECT record, CAST(NULL AS BIGINT) AS line, p.position AS position, p.code AS code
      FROM (${numbered('size(s.read_problems) > 0')}) n LATERAL VIEW explode(read_problems) r AS p`,
  };
}

/**
 * What went wrong reading a record, as (position, code) pairs: a record Spark could not split
 * into the header's fields (told apart by its quotes and fields), bytes that were not UTF-8
 * (which Spark reads as U+FFFD), or values that do not cast to their type.
 */
function readProblems(read: CsvRead, oddQuotes?: string): string {
  const expected = read.columns.length;
  const problem = (position: string, code: string) =>
    `named_struct('position', ${position}, 'code', ${code})`;
  const fieldBreak = literal(`\\Q${read.delimiter}\\E(?=(?:[^"]*"[^"]*")*[^"]*$)`);
  const fields = `size(split(malformed, ${fieldBreak}, -1))`;
  const malformedCode = `CASE
      WHEN size(split(malformed, '"', -1)) % 2 = 0 THEN 'unterminated_quote'
      WHEN ${fields} < ${expected} THEN 'missing_fields'
      WHEN ${fields} > ${expected} THEN 'extra_fields'
      ELSE 'invalid_value' END`;
  const all = read.columns.map((source) => columnAlias(source)).join(', ');
  const invalid = read.columns
    .filter((source) => source.readAs !== 'varchar')
    .map(
      (source) =>
        `IF(${columnAlias(source)} IS NOT NULL AND ${typedSql(source)} IS NULL, ${problem(String(source.position), "'invalid_value'")}, NULL)`,
    );
  const invalidValues =
    invalid.length > 0
      ? `filter(array(${invalid.join(', ')}), p -> p IS NOT NULL)`
      : `array_remove(array(${problem('CAST(NULL AS INT)', "'invalid_value'")}), NULL)`;
  const unterminated = oddQuotes
    ? `WHEN ${oddQuotes} THEN array(${problem('CAST(NULL AS INT)', "'unterminated_quote'")})`
    : '';
  return `CASE ${unterminated}
      WHEN malformed IS NOT NULL THEN array(${problem('CAST(NULL AS INT)', malformedCode)})
      WHEN contains(concat_ws('', ${all}), '\uFFFD') THEN array(${problem('CAST(NULL AS INT)', "'invalid_encoding'")})
      ELSE ${invalidValues} END`;
}

/** A column's text as its contract type; NULL where it does not cast. */
function typedSql(source: SourceColumn): string {
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

/** Whole years from one date to another, counted as DuckDB's date_sub('year', …) counts them. */
function completeYears(from: string, to: string): string {
  // A month counts once its day is reached, or when `to` is the last day of its month (so that
  // the 29th of February has its birthday on the 28th in other years).
  const months = `((year(${to}) - year(${from})) * 12 + month(${to}) - month(${from}) - CASE WHEN day(${to}) < day(${from}) AND ${to} <> last_day(${to}) THEN 1 ELSE 0 END)`;
  return `(${months} div 12)`;
}
