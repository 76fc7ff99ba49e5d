import { DuckDBInstance } from '@duckdb/node-api';

/** Reads Parquet files whole, for assertions on what the lake holds. */
export async function readParquet(
  files: string | string[],
): Promise<Array<Record<string, unknown>>> {
  const list = (Array.isArray(files) ? files : [files]).map(
    (file) => `'${file.replaceAll("'", "''")}'`,
  );
  const instance = await DuckDBInstance.create(':memory:');
  const connection = await instance.connect();
  try {
    const reader = await connection.runAndReadAll(
      `SELECT * FROM read_parquet([${list.join(', ')}])`,
    );
    return reader.getRowObjectsJS() as Array<Record<string, unknown>>;
  } finally {
    connection.closeSync();
    instance.closeSync();
  }
}

/** The columns of a Parquet file as stored: names, physical types and their (converted) meaning. */
export async function parquetColumns(file: string): Promise<Array<Record<string, unknown>>> {
  const instance = await DuckDBInstance.create(':memory:');
  const connection = await instance.connect();
  try {
    const reader = await connection.runAndReadAll(
      `SELECT name, type, converted_type FROM parquet_schema('${file.replaceAll("'", "''")}') WHERE num_children IS NULL OR num_children = 0`,
    );
    return reader.getRowObjectsJS() as Array<Record<string, unknown>>;
  } finally {
    connection.closeSync();
    instance.closeSync();
  }
}
