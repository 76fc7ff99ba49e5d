import { mkdir } from 'node:fs/promises';
import {
  DOUBLE,
  DuckDBInstance,
  type DuckDBConnection,
  type DuckDBType,
  type DuckDBValue,
} from '@duckdb/node-api';
import { AppError } from '../../errors.ts';
import { missingLakeFileError } from '../missing-lake-file.ts';
import type { EngineOptions, QueryEngine, RunOptions, SqlStatement } from '../types.ts';
import { ConnectionPool } from './connection-pool.ts';
import { duckDbDialect, missingReleaseFile } from './duckdb-dialect.ts';
import { DuckDbS3, s3Options } from './duckdb-s3.ts';
import { lockDown, progressTracking, quoteLiteral } from './duckdb-sql.ts';
import { inlineParameters, isBeyondBigint } from './inline-parameters.ts';
import { copyRowsToParquet } from './rows-to-parquet.ts';

export type DuckDbEngineOptions = EngineOptions & {
  /** DuckDB's memory limit for all queries together, e.g. "2GB"; beyond it, it spills. */
  memoryLimit?: string;
  /** Threads for queries; by default one per core. */
  threads?: number;
  /** Statements that may run at once: running queries plus pages, exports and health checks. */
  connections?: number;
  /** Where DuckDB's httpfs extension is installed, for a lake on S3. */
  extensionDirectory?: string;
};

/** DuckDB in-process for queries, locked to the lake and results directories. */
export async function createDuckDbEngine(options: DuckDbEngineOptions): Promise<QueryEngine> {
  await mkdir(options.tempDirectory, { recursive: true });
  const instance = await DuckDBInstance.create(':memory:');
  const pool = await ConnectionPool.open(instance, options.connections ?? 6, progressTracking);
  // The health check's own connection: a server busy with queries still answers it at once,
  // instead of waiting for one of theirs.
  const health = await instance.connect();
  let pinging = Promise.resolve();
  const setup = await pool.acquire();
  let s3: DuckDbS3 | undefined;
  try {
    if (options.s3) s3 = await DuckDbS3.open(setup, s3Options(options.s3, options));
    const extra = [
      ...(options.memoryLimit ? [`SET memory_limit = ${quoteLiteral(options.memoryLimit)}`] : []),
      ...(options.threads ? [`SET threads = ${Math.max(1, Math.floor(options.threads))}`] : []),
    ];
    await lockDown(setup, { ...options, extra });
  } catch (error) {
    pool.release(setup);
    pool.close();
    health.closeSync();
    instance.closeSync();
    throw error;
  }
  pool.release(setup);
  const withConnection = <T>(
    runOptions: RunOptions | undefined,
    work: (connection: DuckDBConnection) => Promise<T>,
  ) =>
    withPooledConnection(pool, runOptions, async (connection) => {
      await s3?.renewIfDue(connection);
      try {
        return await work(connection);
      } catch (error) {
        throw s3 ? s3.explain(error) : error;
      }
    });

  return {
    kind: 'duckdb',
    dialect: duckDbDialect,

    async ping() {
      // One check at a time on the health connection.
      const check = pinging.then(async () => {
        const reader = await health.runAndReadAll('SELECT 1 AS ok');
        if (reader.getRows()[0]?.[0] !== 1) throw new Error('DuckDB answered SELECT 1 wrongly');
      });
      pinging = check.catch(() => undefined);
      await check;
    },

    async rows(statement, runOptions) {
      return withConnection(runOptions, async (connection) => {
        const inlined = inlineParameters(statement);
        const reader = inlined
          ? await connection.runAndReadAll(inlined)
          : await connection.runAndReadAll(statement.sql, values(statement), types(statement));
        return reader.getRowObjectsJson() as Array<Record<string, unknown>>;
      });
    },

    async writeFile(statement, target, format, runOptions) {
      const options =
        format === 'csv' ? 'FORMAT csv, HEADER true' : 'FORMAT parquet, COMPRESSION zstd';
      await withConnection(runOptions, async (connection) => {
        const inlined = inlineParameters(statement);
        const copy = (sql: string) => `COPY (${sql}) TO ${quoteLiteral(target)} (${options})`;
        if (inlined) await connection.run(copy(inlined));
        else await connection.run(copy(statement.sql), values(statement), types(statement));
      });
    },

    async writeRowsAsParquet(rows, columns, target) {
      await withConnection(undefined, (connection) =>
        copyRowsToParquet(connection, rows, columns, target),
      );
    },

    async close() {
      pool.close();
      health.closeSync();
      instance.closeSync();
    },
  };
}

function values(statement: SqlStatement): DuckDBValue[] {
  return statement.params as DuckDBValue[];
}

/**
 * The parameters' types where @duckdb/node-api's own would fail: a whole number beyond BIGINT
 * (a filter `value < 1e308`, say) goes as the DOUBLE it is, not as a BIGINT that cannot hold it.
 * Undefined leaves the library's type for the value.
 */
function types(statement: SqlStatement): DuckDBType[] {
  return statement.params.map((value) =>
    isBeyondBigint(value) ? DOUBLE : undefined,
  ) as DuckDBType[];
}

/**
 * Runs work on a pooled connection, one statement at a time on it, so that one query can be
 * interrupted without touching the others; an abort interrupts it and rejects with a clear
 * error.
 */
async function withPooledConnection<T>(
  pool: ConnectionPool,
  options: RunOptions | undefined,
  work: (connection: DuckDBConnection) => Promise<T>,
): Promise<T> {
  const connection = await pool.acquire();
  const signal = options?.signal;
  const interrupt = () => connection.interrupt();
  signal?.addEventListener('abort', interrupt, { once: true });
  const onProgress = options?.onProgress;
  const progress = onProgress
    ? setInterval(() => {
        const { percentage } = connection.progress;
        if (percentage >= 0) onProgress(percentage);
      }, 500)
    : undefined;
  try {
    if (signal?.aborted) throw signal.reason;
    return await work(connection);
  } catch (error) {
    if (signal?.aborted) {
      throw signal.reason instanceof AppError
        ? signal.reason
        : new AppError('query_stopped', 'The query was stopped');
    }
    if (isMissingFile(error)) throw missingLakeFileError(error);
    throw error;
  } finally {
    clearInterval(progress);
    signal?.removeEventListener('abort', interrupt);
    pool.release(connection);
  }
}

/**
 * Whether DuckDB failed for a file it was given that is not there: a path that matches no file
 * (on disk, or an S3 listing), or an object that S3 answers 404 for.
 */
function isMissingFile(error: unknown): boolean {
  const message = error instanceof Error ? error.message : String(error);
  return (
    message.includes(missingReleaseFile) ||
    /No files found that match the pattern|HTTP 404|404 \(Not Found\)/i.test(message)
  );
}
