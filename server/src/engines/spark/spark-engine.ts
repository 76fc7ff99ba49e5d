import { AppError } from '../../errors.ts';
import { missingLakeFileError } from '../missing-lake-file.ts';
import type { ObjectStore } from '../../storage/object-store.ts';
import type { QueryEngine, RunOptions, SqlStatement } from '../types.ts';
import { rowsOf } from './arrow-json.ts';
import { parseConnectUrl } from './connect-url.ts';
import { SparkConnectClient } from './spark-connect-client.ts';
import { createSmallParquetWriter } from './small-parquet-writer.ts';
import { writeOneFile } from './spark-files.ts';
import { sparkDialect } from './spark-dialect.ts';
import { bindScans } from './spark-scans.ts';

/**
 * Settings every medlake session on Spark runs with: partition folders stay text (a hospital
 * "001" is not the number 1), releases written under older contracts read alongside newer ones,
 * and times are UTC as in the lake.
 */
export const sessionSettings = [
  'SET spark.sql.sources.partitionColumnTypeInference.enabled = false',
  'SET spark.sql.parquet.mergeSchema = true',
  'SET spark.sql.session.timeZone = UTC',
];

/** How long the health check waits for Spark before it reports it unreachable. */
const pingTimeoutMs = 5000;

/**
 * Queries on a Spark cluster through Spark Connect. Spark reads the lake and writes results
 * itself; only pages and small answers travel back to medlake, as Arrow.
 *
 * The session opens at the first statement, not at start: a server whose Spark is down still
 * starts, and says so in its health report and on each query. When Spark is lost (restarted,
 * unreachable), the session is dropped and the next statement opens a new one.
 */
export async function createSparkEngine(options: {
  url: string;
  /** The store results are written to, through which Spark's part files are moved into place. */
  store: ObjectStore;
}): Promise<QueryEngine> {
  const { store } = options;
  const smallFiles = createSmallParquetWriter(store);
  const target = parseConnectUrl(options.url);
  let opening: Promise<SparkConnectClient> | undefined;
  /** Forgets a session (one that could not open, or whose Spark went away), if still current. */
  const forget = (session: Promise<SparkConnectClient>) => {
    if (opening === session) opening = undefined;
  };
  const session = () => {
    if (!opening) {
      const attempt = (async () => {
        const client = new SparkConnectClient(target);
        try {
          for (const setting of sessionSettings) await client.sql(setting);
          return client;
        } catch (error) {
          await client.close();
          throw error;
        }
      })();
      attempt.catch(() => forget(attempt));
      opening = attempt;
    }
    return opening;
  };
  const sql = async (
    query: string,
    args: Record<string, unknown>,
    runOptions: RunOptions & { timeoutMs?: number } = {},
  ) => {
    const current = session();
    const client = await current;
    const bound = bindScans(query);
    try {
      return await client.sqlOverScans(bound.sql, bound.scans, args, runOptions);
    } catch (error) {
      if (error instanceof AppError && error.code === 'engine_unavailable') {
        forget(current);
        void client.close();
      }
      // A path given that is not there (PATH_NOT_FOUND), or a file gone between Spark's listing
      // and its read (FAILED_READ_FILE.FILE_NOT_EXIST).
      if (
        error instanceof AppError &&
        error.code === 'engine_failed' &&
        /PATH_NOT_FOUND|FILE_NOT_EXIST/.test(error.message)
      ) {
        throw missingLakeFileError(error);
      }
      throw error;
    }
  };
  const run = (statement: SqlStatement, runOptions?: RunOptions) =>
    sql(statement.sql, namedArguments(statement), runOptions);

  return {
    kind: 'spark',
    dialect: sparkDialect,

    async ping() {
      const [row] = rowsOf(await sql('SELECT 1 AS ok', {}, { timeoutMs: pingTimeoutMs }));
      if (row?.ok !== 1) throw new Error('Spark answered SELECT 1 wrongly');
    },

    async rows(statement, runOptions) {
      return rowsOf(await run(statement, runOptions));
    },

    async writeFile(statement, target, format, runOptions) {
      const using =
        format === 'csv'
          ? // RFC 4180 quoting (Spark escapes with a backslash by default), one header line.
            "csv OPTIONS (header 'true', escape '\"', nullValue '', emptyValue '', timestampFormat 'yyyy-MM-dd HH:mm:ss', timestampNTZFormat 'yyyy-MM-dd HH:mm:ss')"
          : "parquet OPTIONS (compression 'zstd')";
      await writeOneFile(store, target, async (directory) => {
        await run(
          {
            sql: `INSERT OVERWRITE DIRECTORY '${directory}' USING ${using} SELECT /*+ COALESCE(1) */ * FROM (${statement.sql}) AS r`,
            params: statement.params,
          },
          runOptions,
        );
      });
    },

    // The rows are the medlake server's already: it writes them itself (small-parquet-writer.ts).
    async writeRowsAsParquet(rows, columns, target) {
      await smallFiles.write(rows, columns, target);
    },

    async close() {
      const open = opening;
      opening = undefined;
      await open?.then((client) => client.close()).catch(() => undefined);
      await smallFiles.close();
    },
  };
}

/** A statement's positional parameters as the named arguments of the dialect's :pN markers. */
function namedArguments(statement: SqlStatement): Record<string, unknown> {
  return Object.fromEntries(statement.params.map((value, index) => [`p${index + 1}`, value]));
}
