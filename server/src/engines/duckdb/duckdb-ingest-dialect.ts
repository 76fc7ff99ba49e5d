import type { SourceType } from '@medlake/shared';
import type { IngestDialect } from '../../ingest/ingest-runner.ts';
import { columnAlias } from '../../ingest/ingest-rules.ts';
import { duckDbDialect } from './duckdb-dialect.ts';
import { quoteLiteral } from './duckdb-sql.ts';

/** The DuckDB type each contract source type is read as. */
export const duckTypes: Record<SourceType, string> = {
  varchar: 'VARCHAR',
  integer: 'BIGINT',
  double: 'DOUBLE',
  boolean: 'BOOLEAN',
  date: 'DATE',
  timestamp: 'TIMESTAMP',
};

/** DuckDB's reject error types and the problem each one is. */
const rejectCodes: Record<string, string> = {
  CAST: 'invalid_value',
  'MISSING COLUMNS': 'missing_fields',
  'TOO MANY COLUMNS': 'extra_fields',
  'UNQUOTED VALUE': 'unterminated_quote',
  'LINE SIZE OVER MAXIMUM': 'line_too_long',
  'INVALID ENCODING': 'invalid_encoding',
  'INVALID UNICODE': 'invalid_encoding',
};

/** DuckDB's SQL for ingest. */
export const duckDbIngestDialect: IngestDialect = {
  ...duckDbDialect,
  typeName: (type) =>
    type === 'smallint' ? 'SMALLINT' : (duckTypes[type as SourceType] ?? 'VARCHAR'),
  literal: quoteLiteral,
  // The CSV once into a typed table; DuckDB's reject tables give the line and column of every
  // structural or type error, and the rows of the table are numbered by rowid.
  readCsv: (read) => ({
    setup: [],
    staged: `SELECT ${[...read.kept.map(columnAlias), ...read.flags].join(', ')}
      FROM read_csv(${quoteLiteral(read.location)},
        header = true, auto_detect = false,
        columns = {${read.columns.map((source) => `${quoteLiteral(columnAlias(source))}: ${quoteLiteral(duckTypes[source.readAs])}`).join(', ')}},
        delim = ${quoteLiteral(read.delimiter)}, quote = '"', escape = '"', encoding = 'utf-8',
        strict_mode = true, null_padding = false, parallel = true,
        store_rejects = true, rejects_table = 'rejected_lines', rejects_scan = 'rejected_scans')`,
    accepted: 'SELECT rowid AS record, * FROM staged',
    problems: `SELECT CAST(NULL AS BIGINT) AS record, line,
        CASE column_name ${read.columns.map((source) => `WHEN ${quoteLiteral(columnAlias(source))} THEN ${source.position}`).join(' ')} ELSE column_idx END AS position,
        CASE error_type ${Object.entries(rejectCodes)
          .map(([type, code]) => `WHEN ${quoteLiteral(type)} THEN '${code}'`)
          .join(' ')} ELSE 'invalid_value' END AS code
      FROM rejected_lines`,
  }),
  words: (text) => `unnest(regexp_split_to_array(lower(${text}), '[^[:alnum:]]+'))`,
  matches: (text, pattern) => `regexp_matches(${text}, ${quoteLiteral(pattern)})`,
  matchesAll: (text, pattern) => `regexp_full_match(${text}, ${quoteLiteral(pattern)})`,
  // list_contains, not IN (…): DuckDB plans a long IN list as a join with a source whose
  // progress it cannot tell, and then reports none for the whole write.
  isOneOf: (expression, values) =>
    `list_contains([${values.map(quoteLiteral).join(', ')}], ${expression})`,
  collectSet: (expression) => `list(DISTINCT ${expression})`,
  arrayContains: (array, value) => `list_contains(${array}, ${value})`,
  sha256Hex: (expression) => `sha256(${expression})`,
  completeYears: (from, to) => `date_sub('year', ${from}, ${to})`,
  quartiles: (expression) => `quantile_cont(${expression}, [0.25, 0.5, 0.75])::DOUBLE[]`,
  parquetFiles: (glob) => `read_parquet(${quoteLiteral(glob)})`,
  parquetFilesNamed: (glob) =>
    `(SELECT *, parse_filename(filename) AS file_name FROM read_parquet(${quoteLiteral(glob)}, filename = true))`,
  // One row per file, row group and column in parquet_metadata.
  parquetColumnCounts: (glob) =>
    `SELECT path_in_schema AS name, sum(row_group_num_rows) AS row_count,
      sum(stats_null_count) AS nulls, count(*) - count(stats_null_count) AS unrecorded
    FROM parquet_metadata(${quoteLiteral(glob)}) GROUP BY path_in_schema`,
  // One filtered scan per case: most rows match none, and DuckDB filters fastest.
  rowsWhere: (from, cases) =>
    cases
      .map(
        ({ when, values }) =>
          `SELECT record, ${values.map(([name, value]) => `${value} AS ${name}`).join(', ')} FROM ${from} WHERE ${when}`,
      )
      .join('\nUNION ALL\n'),
};
