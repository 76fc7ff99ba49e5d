import { Int32, Table, Utf8, vectorFromArray } from 'apache-arrow';
import { AppError } from '../../errors.ts';
import { runIngest } from '../../ingest/ingest-pipeline.ts';
import type { IngestRunner, PseudonymBatch } from '../../ingest/ingest-runner.ts';
import {
  csvBytesPerParquetByte,
  releaseFileCount,
  rowGroupBytes,
} from '../../ingest/lake-layout.ts';
import type { IngestEngine, IngestRequest } from '../../ingest/ingest-types.ts';
import { rowsOf } from './arrow-json.ts';
import { parseConnectUrl } from './connect-url.ts';
import { SparkConnectClient } from './spark-connect-client.ts';
import { sessionSettings } from './spark-engine.ts';
import { writeReleaseFiles } from './spark-files.ts';
import { bytesPerPartition, partitionsOf, sparkIngestDialect } from './spark-ingest-dialect.ts';

/**
 * Ingest on Spark, through Spark Connect, with the same pipeline as on DuckDB
 * (ingest/ingest-pipeline.ts): Spark reads, checks, writes and profiles; the distinct patient
 * ids come back to medlake, whose vault gives their pseudonyms, which go to Spark as a table
 * of this session only. Real identifiers live in the session's cached tables, which are
 * dropped at the end.
 */
export function createSparkIngestEngine(options: {
  url: string;
  /** Bytes of CSV per read task, where the contract declares no multi-line values. */
  splitBytes?: number;
}): IngestEngine {
  const splitBytes = options.splitBytes ?? bytesPerPartition;
  const target = parseConnectUrl(options.url);
  return {
    kind: 'spark',
    async ingest(request) {
      const client = new SparkConnectClient(target);
      const cached: string[] = [];
      try {
        for (const setting of sessionSettings) await client.sql(setting);
        await client.sql(`SET spark.sql.files.maxPartitionBytes = ${splitBytes}`);
        return await runIngest(sparkRunner(client, request, cached, splitBytes), request);
      } catch (error) {
        throw withoutValues(error);
      } finally {
        for (const table of cached) {
          await client.sql(`UNCACHE TABLE IF EXISTS ${table}`).catch(() => undefined);
        }
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

function sparkRunner(
  client: SparkConnectClient,
  request: IngestRequest,
  cached: string[],
  splitBytes: number,
): IngestRunner {
  /** Named arguments of the statements: secrets never enter SQL text. */
  const args: Record<string, unknown> = {};
  // The arguments a statement uses: Spark refuses ones it does not.
  const argumentsOf = (query: string) =>
    Object.fromEntries(
      Object.entries(args).filter(([name]) => new RegExp(`:${name}\\b`).test(query)),
    );
  const sql = (query: string, onPercent?: (percent: number) => void) =>
    client.sql(query, argumentsOf(query), { onProgress: onPercent });
  const view = (name: string, query: string) =>
    client.createQueryView(name, query, argumentsOf(query));
  // Tables are few rows beside the upload's: as many partitions as its rows, and no fewer
  // than the splits of a file read in parallel, which a coalesce would read in fewer tasks.
  const partitions = Math.max(
    partitionsOf(request.sourceBytes),
    Math.ceil(request.sourceBytes / splitBytes),
  );
  return {
    dialect: sparkIngestDialect,
    // Spark Connect reports its stages' tasks, not rows.
    progressOfRows: false,
    run: async (statement) => void (await sql(statement)),
    rows: async <T>(query: string) => rowsOf(await sql(query)) as T[],
    // A query's rows cached in the session, spilling to disk when memory is short.
    async table(name, query, onPercent) {
      await view(name, `SELECT /*+ COALESCE(${partitions}) */ * FROM (${query})`);
      cached.push(name);
      await sql(`CACHE TABLE ${name} OPTIONS ('storageLevel' 'MEMORY_AND_DISK')`, onPercent);
    },
    view,
    async secret(value) {
      const name = `secret_${Object.keys(args).length + 1}`;
      args[name] = value;
      return `:${name}`;
    },
    isUnreadable: () => false,
    async valuesOf(query) {
      const values = rowsOf(await sql(query)).map((row) => String(Object.values(row)[0]));
      return {
        total: values.length,
        slice: async (from, count) => values.slice(from, from + count),
        close: async () => undefined,
      };
    },
    // A table of the session a batch at a time, in messages of a bounded size.
    async registerPseudonyms(batches) {
      const parts: string[] = [];
      const add = async (entries: PseudonymBatch) => {
        const name = `patient_map_${parts.length}`;
        const schema = 'real STRING, pseudonym STRING, shift_days INT';
        await client.createView(name, pseudonymTable([...entries]), schema);
        parts.push(`SELECT * FROM ${name}`);
      };
      for await (const entries of batches) await add(entries);
      if (parts.length === 0) await add(new Map());
      await sql(`CREATE OR REPLACE TEMPORARY VIEW patient_map AS ${parts.join(' UNION ALL ')}`);
    },
    // Parquet files of about the configured size, estimated from the size of the CSV, sorted
    // across the release: a range of the sort order per file, each file sorted within.
    writeRelease(query, layout, onPercent) {
      const files = releaseFileCount(request.sourceBytes, request.fileBytes);
      const parquetBytes = request.sourceBytes / csvBytesPerParquetByte;
      const options = [
        "compression 'snappy'",
        // Options reach Parquet's writer: row groups by bytes, bloom filters per column
        // (written where a column chunk is not wholly dictionary-encoded: else the dictionary
        // answers a lookup).
        `'parquet.block.size' '${rowGroupBytes(parquetBytes)}'`,
        ...layout.bloomFilters.map((name) => `'parquet.bloom.filter.enabled#${name}' 'true'`),
      ];
      const order = layout.orderBy.join(', ');
      const select =
        order === ''
          ? `SELECT /*+ REPARTITION(${files}) */ * FROM (${query})`
          : `SELECT /*+ REPARTITION_BY_RANGE(${files}, ${order}) */ * FROM (${query}) SORT BY ${order}`;
      const { store, folder } = request.target;
      return writeReleaseFiles(store, folder, (directory) =>
        sql(
          `INSERT OVERWRITE DIRECTORY '${directory}' USING parquet OPTIONS (${options.join(', ')})
          ${select}`,
          onPercent,
        ),
      );
    },
  };
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
