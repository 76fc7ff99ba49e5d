// npm run bench:layout — the same generated lake laid out two ways, side by side: in upload
// order (as releases were written before issue 22) and clustered (sorted by code, then event
// date, with the row groups ingest writes: server/src/ingest/lake-layout.ts). Each query runs
// on both, alternately, in DuckDB in this process, asked as the server asks it: the planner
// (server/src/query/plan-query.ts) picks the files from what the catalog lists of each release,
// DuckDB's dialect names them in its scan (duckdb-dialect.ts scanParquet) and the filters are
// written as the query compiler writes them. Prints per query the median time and bytes read of
// each layout and their ratios. Bytes read are what DuckDB asked the kernel for
// (/proc/self/io rchar, DuckDB's own file cache off), whether or not the page cache held them;
// CPU is the process's user and system time over all DuckDB's threads, which a loaded machine
// changes less than the wall-clock time. Options: --rows N (default 20000000), --runs N
// (default 5), --threads N (DuckDB's threads; by default one per core), --dir DIR (where both
// lakes are kept between runs, one folder per row count and row group size: a change to the
// layout rule builds them again).
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { loadavg, tmpdir } from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { DuckDBInstance, type DuckDBConnection } from '@duckdb/node-api';
import { querySpecSchema, type Filter } from '@medlake/shared';
import { numericTests } from '../server/src/demo/lab-tests.ts';
import { duckDbDialect } from '../server/src/engines/duckdb/duckdb-dialect.ts';
import { quoteLiteral } from '../server/src/engines/duckdb/duckdb-sql.ts';
import { releaseFileName } from '../server/src/ingest/lake-keys.ts';
import { rowGroupRows } from '../server/src/ingest/lake-layout.ts';
import { planQuery, type CandidateRelease } from '../server/src/query/plan-query.ts';

const { values } = parseArgs({
  options: {
    rows: { type: 'string', default: '20000000' },
    runs: { type: 'string', default: '5' },
    threads: { type: 'string' },
    dir: { type: 'string', default: path.join(tmpdir(), 'medlake-bench-layout') },
  },
});
const rows = Number(values.rows);
const runs = Number(values.runs);
const hospitals = 4;
const months = 12;
const rowsPerRelease = Math.ceil(rows / (hospitals * months));
// The row groups ingest writes for a release of this size, for both layouts: they differ
// only in the order of the rows.
const rowGroup = rowGroupRows(rowsPerRelease);
const home = path.join(values.dir, `rows-${rows}-groups-${rowGroup}`);
const layouts = ['upload order', 'clustered'] as const;
type Layout = (typeof layouts)[number];
const folderOf = (layout: Layout) =>
  path.join(home, layout === 'clustered' ? 'clustered' : 'upload-order');

const instance = await DuckDBInstance.create(':memory:');
const connection = await instance.connect();
await mkdir(home, { recursive: true });
await connection.run(`SET memory_limit = '2GB'`);
// DuckDB keeps file blocks it read in memory by default: each run must read its bytes again,
// as a query on a lake of 500 TB would.
await connection.run('SET enable_external_file_cache = false');
await connection.run(`SET temp_directory = ${quoteLiteral(path.join(home, 'spill'))}`);
// On a machine shared by many, a query's second thread can wait on the first more than it
// helps: the same threads for both layouts, chosen here, so that runs can be compared.
if (values.threads) await connection.run(`SET threads = ${Math.max(1, Number(values.threads))}`);
const threads = (
  await connection.runAndReadAll("SELECT current_setting('threads') AS n")
).getRows()[0]?.[0];

console.log(
  `lake: ${(rowsPerRelease * hospitals * months).toLocaleString('en-US')} rows, ${hospitals} hospitals × ${months} months, ${numericTests.length} codes, row groups of ${rowGroup.toLocaleString('en-US')} rows, in ${home}; DuckDB threads: ${String(threads)}`,
);
await buildLakes(connection);

const code = numericTests[0]!.code;
const month = '2024-06';
const queries: { name: string; where: Filter }[] = [
  { name: 'one code', where: { op: 'code', codes: [code] } },
  {
    name: 'one code, one month',
    where: {
      and: [
        { op: 'code', codes: [code] },
        { op: 'months', from: month, to: month },
      ],
    },
  },
];

/**
 * The statement the server runs for a query on a layout: the files the planner reads from what
 * the catalog lists of each release (one file a release, holding every code, so the code rules
 * none out and the month rules out other months), named in DuckDB's scan, and the filter as the
 * compiler writes it, its parameters inlined.
 */
function sqlOf(layout: Layout, where: Filter): string {
  const candidates: CandidateRelease[] = Array.from({ length: hospitals * months }, (_, i) => {
    const hospitalId = `h${String(Math.floor(i / months) + 1).padStart(2, '0')}`;
    const monthText = `2024-${String((i % months) + 1).padStart(2, '0')}`;
    return {
      id: `${hospitalId}-${monthText}`,
      hospitalId,
      month: monthText,
      folder: path.join(folderOf(layout), `hospital=${hospitalId}`, `month=${monthText}`),
      fileCount: 1,
      files: [{ file: releaseFileName(0), codes: numericTests.map((test) => test.code) }],
    };
  });
  // The measures of the statement below: rows, the mean value, patients.
  const spec = querySpecSchema.parse({
    dataset: 'lab-results',
    where,
    measures: [
      { fn: 'count', as: 'n' },
      { fn: 'mean', column: 'value', as: 'mean' },
      { fn: 'patients', as: 'patients' },
    ],
  });
  const plan = planQuery(spec, candidates, { codeColumn: 'code' });
  const files = plan.main.flatMap((release) =>
    (release.readFiles ?? []).map((file) => path.join(release.folder, file)),
  );
  if (files.length !== plan.main.length) throw new Error('the planner read a release whole');
  const conditions = [`("code" IN (${quoteLiteral(code)}))`];
  if ('and' in where) {
    conditions.push(`("month" >= ${quoteLiteral(month)} AND "month" <= ${quoteLiteral(month)})`);
  }
  return `SELECT count(*) AS n, round(avg(value), 6) AS mean, count(DISTINCT patient) AS patients
  FROM ${duckDbDialect.scanParquet(files)} AS t
  WHERE ${conditions.join(' AND ')}`;
}

const median = (list: number[]) =>
  [...list].sort((a, b) => a - b)[Math.floor(list.length / 2)] ?? 0;
console.log(
  `load average before: ${loadavg()
    .map((load) => load.toFixed(2))
    .join(' ')}`,
);
for (const query of queries) {
  const measured: Record<
    Layout,
    { seconds: number[]; cpu: number[]; bytes: number[]; answer: string }
  > = {
    'upload order': { seconds: [], cpu: [], bytes: [], answer: '' },
    clustered: { seconds: [], cpu: [], bytes: [], answer: '' },
  };
  // One untimed run each, then the layouts alternately, so that both share the machine's
  // state (its load, what the page cache holds) as it drifts.
  for (let run = -1; run < runs; run += 1) {
    for (const layout of run % 2 === 0 ? layouts : [...layouts].reverse()) {
      const result = await measure(connection, sqlOf(layout, query.where));
      measured[layout].answer = result.answer;
      if (run < 0) continue;
      measured[layout].seconds.push(result.seconds);
      measured[layout].cpu.push(result.cpu);
      measured[layout].bytes.push(result.bytes);
    }
  }
  if (measured['upload order'].answer !== measured.clustered.answer) {
    throw new Error(`the layouts answer ${query.name} differently`);
  }
  type Medians = { seconds: number; cpu: number; bytes: number };
  const [upload, clustered] = layouts.map((layout) => ({
    seconds: median(measured[layout].seconds),
    cpu: median(measured[layout].cpu),
    bytes: median(measured[layout].bytes),
  })) as [Medians, Medians];
  const describe = (side: Medians) =>
    `${side.seconds.toFixed(3)} s (CPU ${side.cpu.toFixed(3)} s), ${megabytes(side.bytes)}`;
  console.log(
    `  ${query.name}: upload order ${describe(upload)}; clustered ${describe(clustered)}; ratio ${(upload.seconds / clustered.seconds).toFixed(1)}× time, ${(upload.cpu / clustered.cpu).toFixed(1)}× CPU, ${(upload.bytes / Math.max(clustered.bytes, 1)).toFixed(1)}× bytes  (medians of ${runs} runs)`,
  );
}
console.log(
  `load average after: ${loadavg()
    .map((load) => load.toFixed(2))
    .join(' ')}`,
);
for (const layout of layouts) {
  console.log(`  ${layout}: ${megabytes(await lakeBytes(connection, layout))} of Parquet`);
}
connection.closeSync();
instance.closeSync();

/** A query's time, its CPU time, the bytes this process read while it ran, and its answer. */
async function measure(
  db: DuckDBConnection,
  sql: string,
): Promise<{ seconds: number; cpu: number; bytes: number; answer: string }> {
  const before = await bytesRead();
  const cpuBefore = process.cpuUsage();
  const started = performance.now();
  const reader = await db.runAndReadAll(sql);
  const seconds = (performance.now() - started) / 1000;
  const cpuUsed = process.cpuUsage(cpuBefore);
  const bytes = (await bytesRead()) - before;
  return {
    seconds,
    cpu: (cpuUsed.user + cpuUsed.system) / 1_000_000,
    bytes,
    answer: JSON.stringify(reader.getRowsJS(), (_, v: unknown) => String(v)),
  };
}

/** Bytes this process has read through system calls, from the page cache or the disk. */
async function bytesRead(): Promise<number> {
  const io = await readFile('/proc/self/io', 'utf8');
  return Number(/^rchar:\s*(\d+)/m.exec(io)?.[1] ?? NaN);
}

function megabytes(bytes: number): string {
  return `${(bytes / 1_000_000).toFixed(1)} MB`;
}

async function lakeBytes(db: DuckDBConnection, layout: Layout): Promise<number> {
  const reader = await db.runAndReadAll(
    `SELECT sum(size) AS bytes FROM (SELECT DISTINCT file_name, total_compressed_size AS size, row_group_id FROM parquet_metadata(${quoteLiteral(path.join(folderOf(layout), '**', '*.parquet'))}))`,
  );
  return Number(reader.getRowObjectsJS()[0]?.bytes ?? 0);
}

/**
 * Both lakes, release by release from the same generated rows (as server/src/demo/
 * synthetic-lake.ts makes them: codes and patients interleaved as uploads come), unless a
 * previous run built them.
 */
async function buildLakes(db: DuckDBConnection): Promise<void> {
  const done = path.join(home, 'built.txt');
  try {
    await readFile(done);
    return;
  } catch {
    // Not built, or a build broke off: start again from nothing.
    await rm(path.join(home, 'upload-order'), { recursive: true, force: true });
    await rm(path.join(home, 'clustered'), { recursive: true, force: true });
  }
  const tests = numericTests
    .map(
      (test) =>
        `(${[test.code, test.name, test.category, test.unit].map(quoteLiteral).join(', ')}, ${test.mean}, ${test.sd})`,
    )
    .join(', ');
  await db.run(
    `CREATE TABLE tests AS SELECT row_number() OVER () - 1 AS i, * FROM (VALUES ${tests}) t(code, name, category, unit, mean, sd)`,
  );
  const patients = Math.max(1000, Math.floor(rowsPerRelease / 12));
  for (let h = 0; h < hospitals; h += 1) {
    await db.run(`CREATE OR REPLACE TABLE patients AS
      SELECT p AS i, 'p_' || lpad(CAST(hash(${h}, p) % 1000000000000 AS VARCHAR), 20, '0') AS patient,
        CAST(1930 + hash(${h}, p, 'b') % 75 AS SMALLINT) AS birth_year,
        CASE hash(${h}, p, 's') % 2 WHEN 0 THEN 'F' ELSE 'M' END AS sex,
        lpad(CAST(10 + hash(${h}, p, 'z') % 90 AS VARCHAR), 3, '0') AS zip
      FROM range(${patients}) AS g(p)`);
    for (let m = 0; m < months; m += 1) {
      const monthText = `2024-${String(m + 1).padStart(2, '0')}`;
      const seed = h * 1000 + m;
      await db.run(`CREATE OR REPLACE TABLE release AS
        SELECT p.patient, 'enc_' || CAST(${seed} AS VARCHAR) || '_' || CAST(r // 4 AS VARCHAR) AS encounter,
          p.birth_year, CAST(2024 - p.birth_year AS SMALLINT) AS age, p.sex, p.zip,
          TIMESTAMP '${monthText}-01' + to_seconds(CAST((r * 7919) % 2419200 AS BIGINT)) AS collected_at,
          t.category, t.code, t.name AS description,
          round(t.mean + t.sd * (((r * 2654435761 + ${seed}) % 2000) / 1000.0 - 1), 1) AS value,
          t.unit
        FROM range(${rowsPerRelease}) AS g(r)
        JOIN patients AS p ON p.i = (r * 31 + ${seed}) % ${patients}
        JOIN tests AS t ON t.i = (r * 17 + r // 7 + ${seed}) % ${numericTests.length}
        ORDER BY r`);
      for (const layout of layouts) {
        const folder = path.join(
          folderOf(layout),
          `hospital=h${String(h + 1).padStart(2, '0')}`,
          `month=${monthText}`,
        );
        await mkdir(folder, { recursive: true });
        await db.run(`COPY (SELECT * FROM release${layout === 'clustered' ? ' ORDER BY code, collected_at' : ''})
          TO ${quoteLiteral(path.join(folder, 'part-0.parquet'))}
          (FORMAT parquet, COMPRESSION snappy, ROW_GROUP_SIZE ${rowGroup})`);
      }
      process.stdout.write('.');
    }
  }
  console.log('');
  await writeFile(done, `${new Date().toISOString()}\n`);
}
