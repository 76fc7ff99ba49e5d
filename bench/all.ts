// npm run bench:all — every benchmark behind issue 22's figures, one after the other in one
// command, so that all of them are measured on the same machine in the same state (the issue
// asks for its figures "side by side in one run"). Each step is one of the other benchmarks,
// run as its own process with the options its section of docs/benchmarks.md records; its output
// goes to the terminal and to a log file per step. Before and after each step the load average
// is noted: a figure measured while something else ran is not an idle figure. Ends with a table
// of the steps, their minutes, their load and their exit status.
// Options: --dir DIR (lakes and generated files, kept between runs; default medlake-bench-all
// under the system's temp directory), --only TEXT (the steps whose name contains it), --list
// (print the steps and stop). A step that fails does not stop the ones after it; the command
// exits non-zero if any failed.
import { spawn } from 'node:child_process';
import { createWriteStream, mkdirSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';

const { values } = parseArgs({
  options: {
    dir: { type: 'string', default: path.join(tmpdir(), 'medlake-bench-all') },
    only: { type: 'string' },
    list: { type: 'boolean', default: false },
  },
});
const dir = path.resolve(values.dir);

type Step = { name: string; script: string; args: string[] };

// The scaling series takes three queries to 200 M rows: the others take many minutes each there.
const scalingQueries = ['one hospital', 'monthly series', 'cohort'];

const steps: Step[] = [
  { name: 'ingest', script: 'ingest.ts', args: ['--runs', '1', '--dir', `${dir}/ingest`] },
  { name: 'query 50M', script: 'query.ts', args: ['--runs', '5', '--dir', `${dir}/query`] },
  {
    name: 'query 10M (scaling)',
    script: 'query.ts',
    args: ['--rows', '10000000', '--runs', '3', '--dir', `${dir}/query`],
  },
  ...scalingQueries.map((only) => ({
    name: `query 200M ${only} (scaling)`,
    script: 'query.ts',
    args: ['--rows', '200000000', '--runs', '1', '--only', only, '--dir', `${dir}/query`],
  })),
  {
    name: 'layout 50M',
    script: 'layout.ts',
    args: ['--rows', '50000000', '--dir', `${dir}/layout`],
  },
  { name: 'catalog', script: 'catalog.ts', args: [] },
  {
    name: 'engines',
    script: 'engines.ts',
    args: ['--rows', '2000000', '--runs', '3', '--dir', `${dir}/engines`],
  },
  { name: 'dictionary', script: 'dictionary.ts', args: ['--dir', `${dir}/query`] },
];

const chosen = steps.filter((step) => !values.only || step.name.includes(values.only));
if (values.list) {
  for (const step of chosen)
    console.log(`${step.name}: node bench/${step.script} ${step.args.join(' ')}`);
  process.exit(0);
}

const logs = path.join(dir, 'logs', new Date().toISOString().replace(/[:.]/g, '-'));
mkdirSync(logs, { recursive: true });
console.log(`bench:all: ${chosen.length} steps, logs in ${logs}`);

type Outcome = { step: Step; minutes: number; loadBefore: number; loadAfter: number; code: number };
const outcomes: Outcome[] = [];
for (const step of chosen) {
  const loadBefore = loadavg()[0]!;
  const started = performance.now();
  console.log(
    `\n== ${step.name} (load ${loadBefore.toFixed(1)}): node bench/${step.script} ${step.args.join(' ')}`,
  );
  const code = await run(step, path.join(logs, `${step.name.replace(/[^a-z0-9]+/gi, '-')}.log`));
  outcomes.push({
    step,
    minutes: (performance.now() - started) / 60_000,
    loadBefore,
    loadAfter: loadavg()[0]!,
    code,
  });
}

console.log('\n| step | minutes | load before / after | exit |');
console.log('| ---- | ------: | ------------------- | ---: |');
for (const { step, minutes, loadBefore, loadAfter, code } of outcomes) {
  console.log(
    `| ${step.name} | ${minutes.toFixed(1)} | ${loadBefore.toFixed(1)} / ${loadAfter.toFixed(1)} | ${code} |`,
  );
}
process.exit(outcomes.some((outcome) => outcome.code !== 0) ? 1 : 0);

/** Runs one benchmark as its own process, its output both shown and kept in the log file. */
function run(step: Step, logFile: string): Promise<number> {
  const log = createWriteStream(logFile);
  const child = spawn(
    process.execPath,
    [path.join(import.meta.dirname, step.script), ...step.args],
    {
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  for (const stream of [child.stdout, child.stderr]) {
    stream.on('data', (chunk: Buffer) => {
      process.stdout.write(chunk);
      log.write(chunk);
    });
  }
  return new Promise((resolve) => {
    child.on('close', (code) => log.end(() => resolve(code ?? 1)));
  });
}
