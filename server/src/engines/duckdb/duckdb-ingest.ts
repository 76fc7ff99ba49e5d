import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import { DuckDBInstance, type DuckDBConnection } from '@duckdb/node-api';
import { bytesOf } from '../../env.ts';
import { runIngest } from '../../ingest/ingest-pipeline.ts';
import type { IngestRunner } from '../../ingest/ingest-runner.ts';
import type { IngestEngine, IngestRequest } from '../../ingest/ingest-types.ts';
import type { EngineOptions } from '../types.ts';
import { DuckDbS3, s3Options } from './duckdb-s3.ts';
import { duckDbIngestDialect } from './duckdb-ingest-dialect.ts';
import { writeSortedRelease, type IngestMemory } from './duckdb-ingest-release.ts';
import { lockDown, progressTracking, quoteLiteral } from './duckdb-sql.ts';
import { resourceError } from './resource-errors.ts';

export { duckTypes } from './duckdb-ingest-dialect.ts';

export type DuckDbIngestOptions = EngineOptions & {
  /** DuckDB's memory limit for one ingest, e.g. "1GB"; beyond it DuckDB spills to disk. */
  memoryLimit: string;
  /** Where DuckDB's httpfs extension is installed, for a store on S3. */
  extensionDirectory?: string;
};

/**
 * Ingest on DuckDB (ingest/ingest-pipeline.ts), in an in-memory instance of its own, locked
 * down to the landing zone, the lake and its spill directory. Real identifiers exist only in
 * this instance's memory and its spill directory, which the caller deletes afterwards.
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
          extra: [
            `SET memory_limit = ${quoteLiteral(options.memoryLimit)}`,
            // A release written a range at a time keeps as many range files open, each flushed
            // as early, as the limit holds (4 and 8,192 rows at 128 MB kept within it): fewer
            // open files than ranges make DuckDB close and reopen them, 3 times slower.
            `SET partitioned_write_max_open_files = ${Math.max(4, Math.floor(bytesOf(options.memoryLimit) / 2 ** 24))}`,
            `SET partitioned_write_flush_threshold = ${Math.max(8192, Math.floor(bytesOf(options.memoryLimit) / 2 ** 14))}`,
            ...progressTracking,
          ],
        });
        const reader = await connection.runAndReadAll("SELECT current_setting('threads') AS n");
        const memory: IngestMemory = {
          limitBytes: bytesOf(options.memoryLimit),
          threads: Number(reader.getRows()[0]?.[0] ?? 1),
          scratch: path.join(options.tempDirectory, 'release-ranges'),
        };
        const runner = duckDbRunner(connection, request, memory);
        return await runIngest(runner, request).catch((error: unknown) => {
          throw resourceError(error, options.memoryLimit) ?? (s3 ? s3.explain(error) : error);
        });
      } finally {
        connection.closeSync();
        instance.closeSync();
      }
    },
  };
}

function duckDbRunner(
  connection: DuckDBConnection,
  request: IngestRequest,
  memory: IngestMemory,
): IngestRunner {
  const rows = async <T>(sql: string) =>
    (await connection.runAndReadAll(sql)).getRowObjectsJS() as unknown as T[];
  // DuckDB's share of a statement's work done, now and then while it runs.
  const run = async (sql: string, onPercent?: (percent: number) => void) => {
    const timer = setInterval(() => {
      const progress = connection.progress;
      if (onPercent && progress.percentage >= 0) onPercent(progress.percentage);
    }, 500);
    try {
      await connection.run(sql);
    } finally {
      clearInterval(timer);
    }
  };
  let secrets = 0;
  return {
    dialect: duckDbIngestDialect,
    // DuckDB's own row figure counts its internal units, not rows; its share of the work done
    // (of the CSV's bytes while reading, of the staged rows after that) stands for rows.
    progressOfRows: true,
    run,
    rows,
    table: (name, query, onPercent) => run(`CREATE TEMP TABLE ${name} AS ${query}`, onPercent),
    view: (name, query) => run(`CREATE TEMP VIEW ${name} AS ${query}`),
    async secret(value) {
      // A variable, bound as a parameter: no statement's text, nor so its errors, holds it.
      secrets += 1;
      await connection.run(`SET VARIABLE secret_${secrets} = $1`, [value]);
      return `getvariable('secret_${secrets}')`;
    },
    // DuckDB's strict CSV reader stops at some errors without a row (its reject tables hold
    // the rows it could read past).
    isUnreadable: (error) => error instanceof Error && /CSV Parser|CSV Error/i.test(error.message),
    async valuesOf(query) {
      await run(`CREATE TEMP TABLE slices AS ${query}`);
      const [count] = await rows<{ n: bigint }>('SELECT count(*) AS n FROM slices');
      return {
        total: Number(count?.n ?? 0),
        // A rowid range is a cheap slice of the table, where an OFFSET would rescan it.
        slice: async (from, size) =>
          (
            await connection.runAndReadAll(
              `SELECT * FROM slices WHERE rowid >= ${from} AND rowid < ${from + size}`,
            )
          ).getColumnsJS()[0] as string[],
        close: () => run('DROP TABLE slices'),
      };
    },
    async registerPseudonyms(batches) {
      await run(
        'CREATE TEMP TABLE patient_map (real VARCHAR, pseudonym VARCHAR, shift_days INTEGER)',
      );
      for await (const entries of batches) {
        const appender = await connection.createAppender('patient_map');
        for (const [real, entry] of entries) {
          appender.appendVarchar(real);
          appender.appendVarchar(entry.pseudonym);
          appender.appendInteger(entry.shiftDays);
          appender.endRow();
        }
        appender.closeSync();
      }
    },
    writeParquet: (query, location) =>
      run(`COPY (${query}) TO ${quoteLiteral(location)} (FORMAT parquet, COMPRESSION zstd)`),
    writeRelease: (query, layout, onPercent) =>
      writeSortedRelease({ run, rows }, request, memory, query, layout, onPercent),
  };
}
