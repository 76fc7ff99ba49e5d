// Child process of bench/ingest.ts: DuckDB's own CSV → Parquet, the baseline medlake's ingest
// is compared with. Prints one JSON line.
import { rm } from 'node:fs/promises';
import { DuckDBInstance } from '@duckdb/node-api';

const [csv, parquet] = process.argv.slice(2);
if (!csv || !parquet) throw new Error('usage: ingest-baseline.ts CSV PARQUET');
await rm(parquet, { force: true });
const instance = await DuckDBInstance.create(':memory:');
const connection = await instance.connect();
const started = performance.now();
const cpuBefore = process.cpuUsage();
await connection.run(`COPY (SELECT * FROM read_csv('${csv}')) TO '${parquet}' (FORMAT parquet)`);
const seconds = (performance.now() - started) / 1000;
const cpu = process.cpuUsage(cpuBefore);
connection.closeSync();
instance.closeSync();
await rm(parquet, { force: true });
const cpuSeconds = (cpu.user + cpu.system) / 1e6;
console.log(
  JSON.stringify({ seconds, cpuSeconds, peakRssBytes: process.resourceUsage().maxRSS * 1024 }),
);
