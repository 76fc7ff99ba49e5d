// npm run bench:query — typical researcher queries over a lake of 50 million rows (or
// --rows N), each run through medlake's HTTP API (submit, wait, first page) and as the same
// question in plain SQL directly in DuckDB on the same Parquet files, on the same machine.
// Prints the ratio per query (target ≤ 1.3): the median over the runs of API time / DuckDB
// time. Options: --rows N (total rows, default 50000000), --runs N (default 3; queries under a
// second get more runs, up to 21), --dir DIR (where the lake is kept between runs), --only TEXT
// (just the queries whose name contains it).
import { spawn } from 'node:child_process';
import { mkdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { DuckDBInstance } from '@duckdb/node-api';
import { buildQueryLake, compileForBench } from './query-lake.ts';

const { values } = parseArgs({
  options: {
    rows: { type: 'string', default: '50000000' },
    runs: { type: 'string', default: '3' },
    dir: { type: 'string', default: path.join(tmpdir(), 'medlake-bench-query') },
    only: { type: 'string' },
  },
});
const rows = Number(values.rows);
const runs = Number(values.runs);
const hospitals = 4;
const months = 12;
const rowsPerRelease = Math.ceil(rows / (hospitals * months));
const home = path.join(values.dir, `rows-${rows}`);
await mkdir(home, { recursive: true });
console.log(
  `lake: ${(rowsPerRelease * hospitals * months).toLocaleString('en-US')} rows, ${hospitals} hospitals × ${months} months, in ${home}`,
);
const lake = await buildQueryLake(home, { hospitals, months, rowsPerRelease });

type BenchQuery = { name: string; spec: object; sql: string };
const scan = `read_parquet('${lake.lakeGlob}', hive_partitioning = true, hive_types_autocast = false, union_by_name = true)`;
const allQueries: BenchQuery[] = [
  {
    name: 'rows and patients per code',
    spec: { groupBy: [{ column: 'code' }], measures: [{ fn: 'count' }, { fn: 'patients' }] },
    sql: `SELECT code, count(*), count(DISTINCT patient) FROM ${scan} GROUP BY code`,
  },
  {
    name: 'mean value per code, sex and age band',
    spec: {
      groupBy: [{ column: 'code' }, { column: 'sex' }, { column: 'age', bands: [18, 45, 65] }],
      measures: [{ fn: 'count' }, { fn: 'mean', column: 'value' }],
    },
    sql: `SELECT code, sex, CASE WHEN age < 18 THEN '0-17' WHEN age < 45 THEN '18-44' WHEN age < 65 THEN '45-64' ELSE '65+' END AS band,
      count(*), avg(value), count(DISTINCT patient) FROM ${scan} GROUP BY ALL`,
  },
  {
    name: 'one hospital, one month, per code',
    spec: {
      where: {
        and: [
          { column: 'hospital', op: 'eq', value: 'h02' },
          { column: 'month', op: 'eq', value: '2024-06' },
        ],
      },
      groupBy: [{ column: 'code' }],
      measures: [{ fn: 'count' }, { fn: 'mean', column: 'value' }],
    },
    sql: `SELECT code, count(*), avg(value), count(DISTINCT patient) FROM ${scan} WHERE hospital = 'h02' AND month = '2024-06' GROUP BY code`,
  },
  {
    name: 'monthly series of a code set',
    spec: {
      where: { op: 'code_set', name: 'lipid-panel' },
      groupBy: [{ column: 'code' }, { column: 'collected_at', bucket: 'month' }],
      measures: [{ fn: 'count' }, { fn: 'mean', column: 'value' }],
    },
    sql: `SELECT code, date_trunc('month', collected_at), count(*), avg(value), count(DISTINCT patient) FROM ${scan}
      WHERE code IN ('2093-3', '2571-8', '2085-9', '18262-6', '13457-7') GROUP BY ALL`,
  },
  {
    name: 'cohort: LDL of patients with HbA1c ≥ 6.5',
    spec: {
      where: { column: 'code', op: 'eq', value: '18262-6' },
      cohort: {
        criteria: [
          {
            where: {
              and: [
                { column: 'code', op: 'eq', value: '4548-4' },
                { column: 'value', op: 'gte', value: 6.5 },
              ],
            },
          },
        ],
      },
      groupBy: [{ column: 'sex' }],
      measures: [{ fn: 'patients' }, { fn: 'mean', column: 'value' }],
    },
    sql: `SELECT sex, count(DISTINCT patient), avg(value), count(*) FROM ${scan}
      WHERE code = '18262-6' AND patient IN (SELECT patient FROM ${scan} WHERE code = '4548-4' AND value >= 6.5)
      GROUP BY sex`,
  },
  {
    name: 'median and 90th percentile per code',
    spec: {
      groupBy: [{ column: 'code' }],
      measures: [
        { fn: 'percentile', column: 'value', p: 0.5 },
        { fn: 'percentile', column: 'value', p: 0.9 },
      ],
    },
    sql: `SELECT code, quantile_cont(value, 0.5), quantile_cont(value, 0.9), count(*), count(DISTINCT patient) FROM ${scan} GROUP BY code`,
  },
];

// --only TEXT runs the queries whose name contains TEXT.
const queries = allQueries.filter((query) => !values.only || query.name.includes(values.only));

// The SQL medlake compiles for each query, run directly in DuckDB as the baseline: the ratio
// is then what the service adds (planning, jobs, disclosure control, storing the result, HTTP).
const compiled = await compileForBench(
  lake.home,
  queries.map((query) => query.spec),
);
const server = await startServer(lake.home);
const base = server.url;
const headers = { authorization: `Bearer ${lake.token}`, 'content-type': 'application/json' };

async function viaApi(spec: object): Promise<number> {
  const started = performance.now();
  // One round trip: the submit waits for the end and brings the first page along.
  const response = await fetch(`${base}/api/v1/queries?wait=30`, {
    method: 'POST',
    headers,
    body: JSON.stringify({ dataset: 'lab-results', ...spec }),
  });
  const job = (await response.json()) as { status: string; error: unknown; firstPage?: unknown };
  if (job.status !== 'succeeded' || !job.firstPage) {
    throw new Error(`query failed: ${JSON.stringify(job.error)}`);
  }
  return (performance.now() - started) / 1000;
}

// The direct side: DuckDB in this process, with the same memory limit as the server's.
const instance = await DuckDBInstance.create(':memory:');
const connection = await instance.connect();
await connection.run(`SET memory_limit = '2GB'`);
// Spills go beside the lake, not into the working directory.
await connection.run(`SET temp_directory = '${path.join(home, 'direct-spill')}'`);
async function direct(sql: string, params: unknown[] = []): Promise<number> {
  const started = performance.now();
  (await connection.runAndReadAll(sql, params as never)).getRows();
  return (performance.now() - started) / 1000;
}

const maxShortRuns = 21;
const median = (list: number[]) =>
  [...list].sort((a, b) => a - b)[Math.floor(list.length / 2)] ?? 0;
const results: Array<{
  name: string;
  compiled: number;
  handWritten: number;
  api: number;
  ratio: number;
}> = [];
try {
  for (const [index, query] of queries.entries()) {
    const statement = compiled[index];
    if (!statement) throw new Error('no compiled statement');
    // One untimed run each, so that every side reads from a warm page cache.
    const warmup = await direct(statement.sql, statement.params);
    await direct(query.sql);
    await viaApi(query.spec);
    // A query of a tenth of a second varies by more than a tenth from run to run: short ones
    // are run until each side has had about two seconds, so that their median is steady.
    const samples = Math.max(runs, Math.min(maxShortRuns, Math.ceil(2 / warmup)));
    const compiledTimes: number[] = [];
    const handTimes: number[] = [];
    const apiTimes: number[] = [];
    for (let run = 0; run < samples; run += 1) {
      compiledTimes.push(await direct(statement.sql, statement.params));
      handTimes.push(await direct(query.sql));
      apiTimes.push(await viaApi(query.spec));
    }
    // The ratio is taken run by run and its median reported: the two sides of one run share
    // the machine's state (what ran before, what the caches hold), which drifts between runs.
    const result = {
      name: query.name,
      compiled: median(compiledTimes),
      handWritten: median(handTimes),
      api: median(apiTimes),
      ratio: median(apiTimes.map((time, run) => time / (compiledTimes[run] ?? time))),
    };
    results.push(result);
    console.log(
      `  ${result.name}: same SQL in DuckDB ${result.compiled.toFixed(3)} s, medlake API ${result.api.toFixed(3)} s, ratio ${result.ratio.toFixed(2)}  (hand-written SQL ${result.handWritten.toFixed(3)} s; medians of ${samples} runs)`,
    );
  }
} finally {
  connection.closeSync();
  instance.closeSync();
  await server.stop();
}
const worst = Math.max(...results.map((result) => result.ratio));
console.log(
  `\nworst ratio (medlake API time / the same SQL directly in DuckDB): ${worst.toFixed(2)}  (target ≤ 1.30)`,
);

/** `medlake serve` on a free port, as a child process; resolves once it listens. */
async function startServer(medlakeHome: string): Promise<{ url: string; stop(): Promise<void> }> {
  const bin = new URL('../server/bin/medlake.js', import.meta.url).pathname;
  const child = spawn(process.execPath, [bin, 'serve', '--port', '0'], {
    env: { ...process.env, MEDLAKE_HOME: medlakeHome, LOG_LEVEL: 'warn' },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const url = await new Promise<string>((resolve, reject) => {
    let output = '';
    child.stdout.on('data', (chunk: Buffer) => {
      output += chunk.toString();
      const match = /running at (http:\/\/[^/\s]+)\//.exec(output);
      if (match?.[1]) resolve(match[1]);
    });
    child.once('exit', (code) => reject(new Error(`medlake serve exited with ${code}`)));
  });
  return {
    url,
    stop: () =>
      new Promise((resolve) => {
        child.once('exit', () => resolve());
        child.kill('SIGTERM');
      }),
  };
}
