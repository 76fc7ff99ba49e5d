import type { DuckDBConnection } from '@duckdb/node-api';
import type { ResultColumn } from '../../query/compile-query.ts';
import type { ParquetColumn } from '../types.ts';
import { quoteLiteral } from './duckdb-sql.ts';

/**
 * Writes rows held in memory to a Parquet file with DuckDB. The rows travel as one JSON
 * parameter, typed by a structure of the columns' types, and never touch a file on the way.
 */
export async function copyRowsToParquet(
  connection: DuckDBConnection,
  rows: ReadonlyArray<Record<string, unknown>>,
  columns: ReadonlyArray<ParquetColumn>,
  target: string,
): Promise<void> {
  const structure = [
    Object.fromEntries(columns.map((column) => [column.name, jsonStructureType(column.type)])),
  ];
  await connection.run(
    `COPY (SELECT unnest(from_json($1::JSON, $2), recursive := true))
     TO ${quoteLiteral(target)} (FORMAT parquet, COMPRESSION zstd)`,
    [JSON.stringify(rows), JSON.stringify(structure)],
  );
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
