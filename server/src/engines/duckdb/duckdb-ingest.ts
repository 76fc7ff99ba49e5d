import { mkdir } from 'node:fs/promises';
import { DuckDBInstance, type DuckDBConnection } from '@duckdb/node-api';
import { bytesOf } from '../../env.ts';
import { runIngest } from '../../ingest/ingest-pipeline.ts';
import type { IngestRunner } from '../../ingest/ingest-runner.ts';
import { releaseFileName, releaseFilesIn } from '../../ingest/lake-keys.ts';
import { releaseFileCount, rowGroupRows } from '../../ingest/lake-layout.ts';
import type { IngestEngine, IngestRequest } from '../../ingest/ingest-types.ts';
import type { EngineOptions } from '../types.ts';
import { DuckDbS3, s3Options } from './duckdb-s3.ts';
import { duckDbIngestDialect } from './duckdb-ingest-dialect.ts';
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
          extra: [`SET memory_limit = ${quoteLiteral(options.memoryLimit)}`, ...progressTracking],
        });
        const reader = await connection.runAndReadAll("SELECT current_setting('threads') AS n");
        const memory: IngestMemory = {
          limitBytes: bytesOf(options.memoryLimit),
          threads: Number(reader.getRows()[0]?.[0] ?? 1),
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

/** What the ingest may use of DuckDB's memory, and by how many threads at once. */
type IngestMemory = { limitBytes: number; threads: number };

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
    async writeRelease(query, layout, onPercent) {
      const { store, folder } = request.target;
      const bytesPerRow = request.sourceBytes / Math.max(layout.stagedRows ?? 0, 1);
      // Each writing thread holds its current row group in memory, uncompressed, beside the
      // sort: together they stay within a quarter of the memory limit.
      const fitting = memory.limitBytes / (4 * memory.threads * Math.max(bytesPerRow, 1));
      const options = `FORMAT parquet, COMPRESSION snappy, ROW_GROUP_SIZE ${rowGroupRows(layout.rows, fitting)}`;
      // Empty values first, as Spark sorts them, so that both engines write the same order.
      const order = layout.orderBy.map((column) => `${column} NULLS FIRST`).join(', ');
      const sorted = `SELECT * FROM (${query}) AS r${order ? ` ORDER BY ${order}` : ''}`;
      const file = async (index: number) =>
        quoteLiteral(await store.locateForWrite(`${folder}/${releaseFileName(index)}`));
      // DuckDB's sort does not keep within a tight memory limit: a month of 1.1 M rows (300 MB
      // of CSV) ran out at 128 MB, in the sort and in writing its order. A release of more CSV
      // than half the limit is written in upload order, in parallel, as before issue 22, so the
      // memory bound holds; Spark sorts every release.
      if (request.sourceBytes > memory.limitBytes / 2) {
        await run(
          `COPY (${query}) TO ${quoteLiteral(await store.locateForWrite(folder))} (${options},
            FILENAME_PATTERN 'part-{i}', FILE_SIZE_BYTES ${Math.round(request.fileBytes)},
            PRESERVE_ORDER false)`,
          onPercent,
        );
        return releaseFilesIn(store, folder);
      }
      // DuckDB writes its code column's bloom filter by itself (it is dictionary-encoded).
      const files = releaseFileCount(request.sourceBytes, request.fileBytes);
      if (files === 1) {
        await run(`COPY (${sorted}) TO ${await file(0)} (${options})`, onPercent);
        return releaseFilesIn(store, folder);
      }
      // DuckDB keeps a sort's order only within one file it writes: the sorted rows are kept
      // (spilling beyond the memory limit), then written a range of them per file.
      await run(`CREATE TEMP TABLE release_rows AS ${sorted}`, (percent) => onPercent(percent / 2));
      const [count] = await rows<{ n: bigint }>('SELECT count(*) AS n FROM release_rows');
      const perFile = Math.ceil(Number(count?.n ?? 0) / files);
      for (let index = 0; index * perFile < Number(count?.n ?? 0) || index === 0; index += 1) {
        const range = `rowid >= ${index * perFile} AND rowid < ${(index + 1) * perFile}`;
        await run(
          `COPY (SELECT * FROM release_rows WHERE ${range}) TO ${await file(index)} (${options})`,
        );
        onPercent(50 + (50 * (index + 1)) / files);
      }
      await run('DROP TABLE release_rows');
      return releaseFilesIn(store, folder);
    },
  };
}
