// npm run bench:ingest — medlake's ingest against DuckDB's own CSV → Parquet COPY of the same
// file on the same machine, as a throughput ratio (target ≥ 0.8), and medlake's peak memory
// (target < 2 GB). Options: --rows N (default: enough for 1 GB), --runs N (default 2).
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, rename, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { parseArgs, promisify } from 'node:util';
import { generateExports } from '../server/src/demo/generate-exports.ts';

const run = promisify(execFile);
const { values } = parseArgs({
  options: {
    rows: { type: 'string', default: '3800000' },
    runs: { type: 'string', default: '2' },
    dir: { type: 'string', default: path.join(tmpdir(), 'medlake-bench') },
  },
});
const rows = Number(values.rows);
const runs = Number(values.runs);
const directory = values.dir;
await mkdir(directory, { recursive: true });

// The generated file is kept between runs: making 1 GB of CSV takes longer than ingesting it.
const csv = path.join(directory, `h01-2024-01-${rows}.csv`);
if (!existsSync(csv)) {
  console.log(`generating ${rows.toLocaleString('en-US')} rows …`);
  const [generated] = await generateExports({ hospitals: 1, months: 1, rows, outDir: directory });
  if (!generated) throw new Error('nothing generated');
  await rename(generated.file, csv);
}
const bytes = (await stat(csv)).size;
console.log(
  `file: ${csv}, ${(bytes / 2 ** 30).toFixed(2)} GiB, ${rows.toLocaleString('en-US')} rows`,
);

type Measurement = { seconds: number; peakRssBytes: number; phaseSeconds?: Record<string, number> };
async function child(script: string, args: string[]): Promise<Measurement> {
  const here = path.dirname(new URL(import.meta.url).pathname);
  const { stdout } = await run(process.execPath, [path.join(here, script), ...args], {
    maxBuffer: 1 << 20,
  });
  return JSON.parse(stdout.trim().split('\n').at(-1) ?? '{}') as Measurement;
}

const baseline: Measurement[] = [];
const medlake: Measurement[] = [];
for (let i = 0; i < runs; i += 1) {
  // Alternate, so that a slow moment of the machine hurts both sides alike.
  baseline.push(await child('ingest-baseline.ts', [csv, path.join(directory, 'baseline.parquet')]));
  medlake.push(await child('ingest-medlake.ts', [csv, '2024-01']));
  console.log(
    `run ${i + 1}: DuckDB COPY ${baseline.at(-1)?.seconds.toFixed(2)} s, medlake ingest ${medlake.at(-1)?.seconds.toFixed(2)} s`,
  );
}

const best = (list: Measurement[]) => Math.min(...list.map((m) => m.seconds));
const mib = (value: number) => `${(value / 2 ** 20).toFixed(0)} MiB`;
const throughput = (seconds: number) => `${(bytes / 2 ** 20 / seconds).toFixed(1)} MiB/s`;
const ratio = best(baseline) / best(medlake);
const peak = Math.max(...medlake.map((m) => m.peakRssBytes));
console.log('');
console.log(
  `DuckDB COPY (baseline)  best of ${runs}: ${best(baseline).toFixed(2)} s, ${throughput(best(baseline))}`,
);
console.log(
  `medlake ingest          best of ${runs}: ${best(medlake).toFixed(2)} s, ${throughput(best(medlake))}, peak memory ${mib(peak)}`,
);
console.log(
  `ratio (medlake throughput / DuckDB COPY throughput): ${ratio.toFixed(2)}  (target ≥ 0.80)`,
);
console.log(`peak memory of the ingest process: ${mib(peak)}  (target < 2048 MiB)`);
const fastest = medlake.reduce((a, b) => (a.seconds <= b.seconds ? a : b));
const phases = Object.entries(fastest.phaseSeconds ?? {}).map(
  ([phase, s]) => `${phase} ${s.toFixed(2)} s`,
);
console.log(`medlake phases (fastest run): ${phases.join(', ')}`);
