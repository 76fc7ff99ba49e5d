// npm run bench:ledger-first-asking -- --baseline DIR — the event loop during a whole first
// asking of an aggregate user (engine, ledger check, result, record), through this code and
// through another checkout of medlake (--baseline: a worktree of main before a change, with its
// own `npm ci`), in one process, alternately. Each side gets a platform of its own (PGlite and
// a lake of bench:query's shape: 4 hospitals × 12 months, --rows rows in all, default 960,000,
// built once under --dir DIR); each round a fresh researcher per side asks, as bench:query's
// first three queries do, the patients per code (untimed), then the mean by code, sex and age
// band, then one hospital, one month, per code: the two timed askings are first askings whose
// ledger search has cells to search (the same searches whatever the rows: the boxes are made of
// releases, codes, sexes and bands). While each timed asking runs, perf_hooks'
// monitorEventLoopDelay samples the event loop, and a timer due every 10 ms stands for any other
// request: its latest firing is the longest another request would have waited. Prints, per
// asking and side, the medians over --rounds rounds (default 3, sides alternately, each first on
// every other round): the longest event-loop delay, its 99th percentile, the latest timer, the
// main thread's CPU time and the asking's time; the ratios; and the load average before and after.
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { monitorEventLoopDelay, performance } from 'node:perf_hooks';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import type { Platform } from '../server/src/platform.ts';
import type { User } from '../server/src/catalog/users-repository.ts';
import { benchQueries } from './query-cases.ts';

const { values } = parseArgs({
  options: {
    baseline: { type: 'string' },
    rows: { type: 'string', default: '960000' },
    rounds: { type: 'string', default: '3' },
    dir: { type: 'string', default: path.join(tmpdir(), 'medlake-bench-first-asking') },
  },
});
if (!values.baseline) throw new Error('--baseline DIR: a checkout of medlake to compare with');
const rounds = Number(values.rounds);
const hospitals = 4;
const months = 12;
const rowsPerRelease = Math.ceil(Number(values.rows) / (hospitals * months));

const uptime = () => execFileSync('uptime', { encoding: 'utf8' }).trim();
console.log(`before: ${uptime()}`);

type Side = {
  name: string;
  platform: Platform;
  datasetId: string;
  newResearcher(email: string): Promise<User>;
  ask(user: User, spec: object): Promise<void>;
};

/** A platform on a lake of its own, opened with the code of the checkout at `root`. */
async function openSide(name: string, root: string): Promise<Side> {
  const from = (file: string) => import(pathToFileURL(path.join(root, file)).href);
  const { openPlatform } = await from('server/src/platform.ts');
  const { loadEnv } = await from('server/src/env.ts');
  const { publishSyntheticLabResults } = await from('server/test/synthetic-lake.ts');
  const { saveDataset } = await from('server/src/use-cases/manage-datasets.ts');
  const { datasetsRepository } = await from('server/src/catalog/datasets-repository.ts');
  const { researcherWithAccess, runQuery } = await from('server/test/query-helpers.ts');
  const home = path.join(values.dir!, `${name}-rows-${rowsPerRelease * hospitals * months}`);
  const built = path.join(home, 'bench-built');
  // A build broken off starts again from nothing.
  if (!existsSync(built)) await rm(home, { recursive: true, force: true });
  await mkdir(home, { recursive: true });
  const platform: Platform = await openPlatform(
    loadEnv({ MEDLAKE_HOME: home, LOG_LEVEL: 'silent', MEDLAKE_SHED_EVENT_LOOP_DELAY_MS: '60000' }),
    { migrate: true },
  );
  let dataset = await datasetsRepository(platform.catalog.db).get('lab-results');
  if (!dataset) {
    const contract = JSON.parse(
      await readFile(path.join(root, 'server/config/contracts/lab-results.json'), 'utf8'),
    );
    dataset = await saveDataset(platform, contract);
    await publishSyntheticLabResults(platform, dataset, { hospitals, months, rowsPerRelease });
    await writeFile(built, '');
  }
  const datasetId: string = dataset.id;
  return {
    name,
    platform,
    datasetId,
    newResearcher: (email) => researcherWithAccess(platform, email, datasetId, 'aggregate'),
    async ask(user, spec) {
      const { job } = await runQuery(platform, user, { dataset: datasetId, ...spec });
      if (job.status !== 'succeeded') throw new Error(`${name}: the query ${job.status}`);
    },
  };
}

type Sample = { maxDelay: number; p99Delay: number; latest: number; cpu: number; wall: number };

/** One asking, the event loop watched until its answer is in and the loop has turned again. */
async function measure(asking: () => Promise<void>): Promise<Sample> {
  const histogram = monitorEventLoopDelay({ resolution: 1 });
  // Its first tick only starts its clock: it ticks a few times before the asking.
  histogram.enable();
  await new Promise((resolve) => setTimeout(resolve, 5));
  let latest = 0;
  let due = performance.now() + 10;
  const timer = setInterval(() => {
    const now = performance.now();
    latest = Math.max(latest, now - due);
    due = now + 10;
  }, 10);
  const cpu = process.threadCpuUsage();
  const started = performance.now();
  await asking();
  const wall = performance.now() - started;
  const used = process.threadCpuUsage(cpu);
  await new Promise((resolve) => setTimeout(resolve, 15));
  clearInterval(timer);
  histogram.disable();
  return {
    maxDelay: histogram.max / 1e6,
    p99Delay: histogram.percentile(99) / 1e6,
    latest,
    cpu: (used.user + used.system) / 1000,
    wall,
  };
}

// bench:query's own specs, by name: the same questions as its first three queries.
const [perCode, ...timed] = benchQueries('').slice(0, 3);
const askings = Object.fromEntries(timed.map((query) => [query.name, query.spec]));

const sides = [
  await openSide('baseline', path.resolve(values.baseline)),
  await openSide('this', path.resolve(import.meta.dirname, '..')),
];
const samples = new Map<string, Sample[]>();
try {
  // A round of warm-up, untimed, then the rounds.
  for (let round = -1; round < rounds; round += 1) {
    const order = round % 2 === 0 ? sides : sides.toReversed();
    for (const side of order) {
      const user = await side.newResearcher(
        `first-asking-${side.name}-${process.pid}-${round + 1}@example.org`,
      );
      await side.ask(user, perCode!.spec);
      for (const [name, spec] of Object.entries(askings)) {
        const sample = await measure(() => side.ask(user, spec));
        if (round < 0) continue;
        const key = `${name}\u0000${side.name}`;
        samples.set(key, [...(samples.get(key) ?? []), sample]);
      }
    }
  }
  const median = (list: number[]) => list.toSorted((a, b) => a - b)[list.length >> 1]!;
  const fixed = (n: number) => n.toFixed(n < 10 ? 1 : 0);
  for (const name of Object.keys(askings)) {
    console.log(`\n${name} (a first asking, after the patients per code):`);
    const of = (side: string, key: keyof Sample) =>
      median(samples.get(`${name}\u0000${side}`)!.map((sample) => sample[key]));
    for (const side of sides) {
      console.log(
        `  ${side.name.padEnd(8)} event-loop delay max ${fixed(of(side.name, 'maxDelay'))} ms, p99 ${fixed(of(side.name, 'p99Delay'))} ms; a 10 ms timer at most ${fixed(of(side.name, 'latest'))} ms late; main thread CPU ${fixed(of(side.name, 'cpu'))} ms; the asking ${fixed(of(side.name, 'wall'))} ms`,
      );
    }
    const ratio = (key: keyof Sample) => (of('this', key) / of('baseline', key)).toFixed(3);
    console.log(
      `  this / baseline: longest event-loop delay ${ratio('maxDelay')}, latest timer ${ratio('latest')}, main thread CPU ${ratio('cpu')}, the asking ${ratio('wall')} (medians of ${rounds} rounds, sides alternately)`,
    );
  }
} finally {
  for (const side of sides) await side.platform.close();
  console.log(`\nafter: ${uptime()}`);
}
