import type { DuckDBConnection } from '@duckdb/node-api';
import type { ResultColumn } from '../../query/compile-query.ts';
import type { ParquetColumn } from '../types.ts';
import { quoteLiteral } from './duckdb-sql.ts';

/**
 * Up to this many characters of JSON, the rows go into the statement as a string literal: a
 * statement without parameters is one call into DuckDB, where one with parameters is three
 * (extract, prepare, run), each a trip through libuv's thread pool and back, which on a busy
 * machine cost more than the write of a small result itself. Larger results go as a parameter,
 * so that DuckDB's parser never reads megabytes of literal.
 */
const inlineJsonLimit = 64 * 1024;

/**
 * Writes rows held in memory to a Parquet file with DuckDB. The rows travel as one JSON string,
 * typed by a structure of the columns' types, and never touch a file on the way.
 */
export async function copyRowsToParquet(
  connection: DuckDBConnection,
  rows: ReadonlyArray<Record<string, unknown>>,
  columns: ReadonlyArray<ParquetColumn>,
  target: string,
): Promise<void> {
  const structure = JSON.stringify([
    Object.fromEntries(columns.map((column) => [column.name, jsonStructureType(column.type)])),
  ]);
  const json = JSON.stringify(rows);
  const copy = (values: string, types: string) =>
    `COPY (SELECT unnest(from_json(${values}::JSON, ${types}), recursive := true))
     TO ${quoteLiteral(target)} (FORMAT parquet, COMPRESSION zstd)`;
  if (json.length <= inlineJsonLimit) {
    await connection.run(copy(quoteLiteral(json), quoteLiteral(structure)));
  } else {
    await connection.run(copy('$1', '$2'), [json, structure]);
  }
}

/** A result column's type in DuckDB's JSON structure notation. */
function jsonStructureType(type: ResultColumn['type']): unknown {
  switch (type) {
    case 'integer':
      return 'BIGINT';
    case 'smallint':
      return 'SMALLINT';
    case 'double':
      return 'DOUBLE';
    case 'boolean':
      return 'BOOLEAN';
    case 'date':
      return 'DATE';
    case 'timestamp':
      return 'TIMESTAMP';
    case 'histogram':
      return [{ bin: 'DOUBLE', count: 'BIGINT', suppressed: 'BOOLEAN' }];
    default:
      return 'VARCHAR';
  }
}
