// npm run bench:engines — the query benchmark's questions on both engines over the same lake
// (5 million rows by default, --rows N): through medlake's HTTP API with MEDLAKE_ENGINE=spark,
// as the same Spark SQL sent straight to the Spark Connect server, and as medlake's DuckDB SQL
// run directly in DuckDB. Prints per query the overhead ratio (medlake on Spark / plain Spark
// SQL, the median of per-run ratios, each run's beside it) and, for information, DuckDB / Spark
// on this machine.
// Starts a local Spark Connect server (scripts/services/spark.sh) unless --spark-url names one
// that reads the same files. Options: --rows N, --runs N (default 3), --dir DIR, --only TEXT.
import { execFileSync } from 'node:child_process';
import { mkdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { DuckDBInstance } from '@duckdb/node-api';
import { parseConnectUrl } from '../server/src/engines/spark/connect-url.ts';
import { SparkConnectClient } from '../server/src/engines/spark/spark-connect-client.ts';
import { sessionSettings } from '../server/src/engines/spark/spark-engine.ts';
import { bindScans } from '../server/src/engines/spark/spark-scans.ts';
import { benchQueries, startServer } from './query-cases.ts';
import { buildQueryLake, compileForBench } from './query-lake.ts';

const { values } = parseArgs({
  options: {
    rows: { type: 'string', default: '5000000' },
    runs: { type: 'string', default: '3' },
    dir: { type: 'string', default: path.join(tmpdir(), 'medlake-bench-query') },
    only: { type: 'string' },
    'spark-url': { type: 'string' },
  },
});
const rows = Number(values.rows);
const runs = Number(values.runs);
const hospitals = 4;
const months = 12;
const home = path.join(values.dir, `rows-${rows}`);
await mkdir(home, { recursive: true });
const lake = await buildQueryLake(home, {
  hospitals,
  months,
  rowsPerRelease: Math.ceil(rows / (hospitals * months)),
});
const queries = benchQueries(lake.lakeGlob).filter(
  (query) => !values.only || query.name.includes(values.only),
);

const sparkScript = path.resolve(import.meta.dirname, '../scripts/services/spark.sh');
const sparkUrl =
  values['spark-url'] ??
  execFileSync('bash', [sparkScript, 'start'], {
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'inherit'],
  }).trim();
const onSpark = { MEDLAKE_ENGINE: 'spark', SPARK_CONNECT_URL: sparkUrl };
console.log(`lake: ${rows.toLocaleString('en-US')} rows in ${home}; Spark at ${sparkUrl}`);

const specs = queries.map((query) => query.spec);
const duckdbStatements = await compileForBench(home, specs);
const sparkStatements = await compileForBench(home, specs, onSpark);
const server = await startServer(home, onSpark);
const spark = new SparkConnectClient(parseConnectUrl(sparkUrl));
for (const setting of sessionSettings) await spark.sql(setting);
const duckdb = await DuckDBInstance.create(':memory:');
const connection = await duckdb.connect();

const seconds = async (work: () => Promise<unknown>) => {
  const started = performance.now();
  await work();
  return (performance.now() - started) / 1000;
};
const authorization = `Bearer ${lake.token}`;
const viaApi = (spec: object) =>
  seconds(async () => {
    const response = await fetch(`${server.url}/api/v1/queries?wait=30`, {
      method: 'POST',
      headers: { authorization, 'content-type': 'application/json' },
      body: JSON.stringify({ dataset: 'lab-results', ...spec }),
    });
    let job = (await response.json()) as { id: string; status: string; error: unknown };
    // A query longer than the API's longest wait (30 s, a loaded machine) is waited for again.
    while (job.status === 'queued' || job.status === 'running') {
      const again = await fetch(`${server.url}/api/v1/queries/${job.id}?wait=30`, {
        headers: { authorization },
      });
      job = (await again.json()) as typeof job;
    }
    if (job.status !== 'succeeded') throw new Error(`query failed: ${JSON.stringify(job.error)}`);
  });
const median = (list: number[]) =>
  [...list].sort((a, b) => a - b)[Math.floor(list.length / 2)] ?? 0;

try {
  for (const [index, query] of queries.entries()) {
    const onDuckDb = duckdbStatements[index]!;
    const onSparkSql = sparkStatements[index]!;
    const args = Object.fromEntries(onSparkSql.params.map((value, i) => [`p${i + 1}`, value]));
    // The statement's scans bound as Parquet sources, one path per file, as medlake's engine
    // sends them (spark-scans.ts): Spark cannot read the lake's paths in the SQL itself.
    const bound = bindScans(onSparkSql.sql);
    const plainSpark = () => seconds(() => spark.sqlOverScans(bound.sql, bound.scans, args));
    const plainDuckDb = () =>
      seconds(async () =>
        (await connection.runAndReadAll(onDuckDb.sql, onDuckDb.params as never)).getRows(),
      );
    // One untimed run of each side, so that every side starts warm.
    await plainSpark();
    await viaApi(query.spec);
    await plainDuckDb();
    const sparkTimes: number[] = [];
    const apiTimes: number[] = [];
    const duckdbTimes: number[] = [];
    for (let run = 0; run < runs; run++) {
      // The two Spark sides take turns at going first: of two statements in a row the second can
      // run slower or faster (the first one's garbage, warm caches); medlake always went second.
      if (run % 2 === 0) {
        sparkTimes.push(await plainSpark());
        apiTimes.push(await viaApi(query.spec));
      } else {
        apiTimes.push(await viaApi(query.spec));
        sparkTimes.push(await plainSpark());
      }
      duckdbTimes.push(await plainDuckDb());
    }
    const ratios = apiTimes.map((time, run) => time / sparkTimes[run]!);
    console.log(
      `  ${query.name}: plain Spark SQL ${median(sparkTimes).toFixed(3)} s, medlake on Spark ${median(apiTimes).toFixed(3)} s, overhead ratio ${median(ratios).toFixed(2)} (runs ${ratios.map((ratio) => ratio.toFixed(2)).join(' ')}); DuckDB ${median(duckdbTimes).toFixed(3)} s (DuckDB / Spark ${(median(duckdbTimes) / median(sparkTimes)).toFixed(2)})`,
    );
  }
} finally {
  await spark.close();
  connection.closeSync();
  duckdb.closeSync();
  await server.stop();
  if (!values['spark-url']) execFileSync('bash', [sparkScript, 'stop'], { stdio: 'inherit' });
}
