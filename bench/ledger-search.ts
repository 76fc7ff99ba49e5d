// npm run bench:ledger-search — what the release ledger's set search of a first asking costs
// the main thread, as main ran it (the search in the main thread) against now (in a worker
// thread, ledger/search-threads.ts), alternately in one process. The searches are those of the
// bench lake's two traced first askings (server/test/ledger-searches.ts: the mean by code, sex
// and age band after the patients per code; one hospital, one month, per code after both), or
// dumped ones with --input FILE (JSON with `news` and `searchPool`, as a scratch patch of
// release-ledger.ts wrote them; repeatable). While each search runs, perf_hooks'
// monitorEventLoopDelay samples the event loop, and a local HTTP server in the same process is
// asked every 10 ms (a health check's stand-in), each request timed from when it was due.
// Prints, per search and way, medians over --runs runs (default 10, after 2 of warm-up each):
// the longest event-loop delay and its 99th percentile, the slowest request, the main thread's
// CPU time during the search (process.threadCpuUsage), and the time to the answer; then the
// ratios, and the load average before and after.
import { readFileSync } from 'node:fs';
import { createServer, get } from 'node:http';
import type { AddressInfo } from 'node:net';
import { execFileSync } from 'node:child_process';
import { monitorEventLoopDelay, performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import { ledgerSearchThreads, searchInWorker } from '../server/src/query/ledger/search-threads.ts';
import { searchCombinations, type SearchCell } from '../server/src/query/ledger/search.ts';
import { lakeSearches, searchAsData } from '../server/test/ledger-searches.ts';

const { values } = parseArgs({
  options: {
    runs: { type: 'string', default: '10' },
    input: { type: 'string', multiple: true },
  },
});
const runs = Number(values.runs);
const searches = [
  ...lakeSearches(),
  ...(values.input ?? []).map((file) => {
    const dumped = JSON.parse(readFileSync(file, 'utf8')) as {
      news: SearchCell[];
      searchPool: SearchCell[];
    };
    return { name: `dumped ${file}`, news: dumped.news, earlier: dumped.searchPool };
  }),
];

const uptime = () => execFileSync('uptime', { encoding: 'utf8' }).trim();
console.log(`before: ${uptime()}`);

const server = createServer((_, response) => response.end('ok'));
await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
const { port } = server.address() as AddressInfo;
const ask = () =>
  new Promise<void>((resolve, reject) => {
    get({ host: '127.0.0.1', port, path: '/health' }, (response) => {
      response.resume();
      response.on('end', resolve);
    }).on('error', reject);
  });

type Sample = {
  maxDelay: number;
  p99Delay: number;
  slowest: number;
  answered: number;
  cpu: number;
  wall: number;
};

/** How often the stand-in health check asks during a search. */
const every = 10;

/**
 * One search, one way: the event loop's delay sampled, and a request sent every 10 ms from the
 * moment the search starts, each timed from when it was due (a request due while the loop is
 * blocked waits too), until the answer is in and the loop has turned once more.
 */
async function measure(search: () => Promise<unknown>): Promise<Sample> {
  const histogram = monitorEventLoopDelay({ resolution: 1 });
  // Its first tick only starts its clock (so does a reset): it ticks a few times before the
  // search, and those ticks are counted too.
  histogram.enable();
  await new Promise((resolve) => setTimeout(resolve, 5));
  const latencies: number[] = [];
  const pending: Array<Promise<void>> = [];
  const started = performance.now();
  let due = started;
  let searching = true;
  const send = () => {
    const since = due;
    due += every;
    pending.push(ask().then(() => void latencies.push(performance.now() - since)));
  };
  const timer = setInterval(() => {
    // Every request that fell due while the loop was blocked goes out now, late.
    while (searching && due <= performance.now()) send();
  }, every);
  send();
  const cpu = process.threadCpuUsage();
  await search();
  const wall = performance.now() - started;
  const used = process.threadCpuUsage(cpu);
  searching = false;
  clearInterval(timer);
  // The loop turns once more, so that a delay the search caused is sampled.
  await new Promise((resolve) => setTimeout(resolve, 5));
  histogram.disable();
  await Promise.all(pending);
  return {
    maxDelay: histogram.max / 1e6,
    p99Delay: histogram.percentile(99) / 1e6,
    slowest: Math.max(...latencies),
    answered: latencies.length,
    cpu: (used.user + used.system) / 1000,
    wall,
  };
}

const median = (list: number[]) => list.toSorted((a, b) => a - b)[list.length >> 1]!;
const fixed = (n: number) => n.toFixed(n < 10 ? 1 : 0);

try {
  for (const { name, news, earlier } of searches) {
    const ways = {
      'main thread (main)': async () => searchCombinations(news, earlier),
      'worker thread (now)': () => searchInWorker(news, earlier),
    };
    // The same answer both ways, checked once per search.
    const [here, there] = [searchCombinations(news, earlier), await searchInWorker(news, earlier)];
    if (JSON.stringify(searchAsData(here)) !== JSON.stringify(searchAsData(there))) {
      throw new Error(`the worker thread's answer differs from the main thread's for ${name}`);
    }
    const samples: Record<string, Sample[]> = {
      'main thread (main)': [],
      'worker thread (now)': [],
    };
    for (let run = -2; run < runs; run += 1) {
      const order = Object.keys(ways);
      if (run % 2 !== 0) order.reverse();
      for (const way of order) {
        const sample = await measure(ways[way as keyof typeof ways]);
        if (run >= 0) samples[way]!.push(sample);
      }
    }
    console.log(
      `\n${name}: ${news.length} new cells, ${earlier.length} earlier, ${here.evaluated} combinations evaluated, ${here.candidates.length} candidates, the same both ways`,
    );
    const rows = Object.entries(samples).map(([way, list]) => {
      const of = (key: keyof Sample) => median(list.map((sample) => sample[key]));
      return {
        way,
        maxDelay: of('maxDelay'),
        p99Delay: of('p99Delay'),
        slowest: of('slowest'),
        answered: of('answered'),
        cpu: of('cpu'),
        wall: of('wall'),
      };
    });
    for (const row of rows) {
      console.log(
        `  ${row.way.padEnd(20)} event-loop delay max ${fixed(row.maxDelay)} ms, p99 ${fixed(row.p99Delay)} ms; slowest of ${row.answered} requests ${fixed(row.slowest)} ms; main thread CPU ${fixed(row.cpu)} ms; answer after ${fixed(row.wall)} ms`,
      );
    }
    const [main, now] = rows as [(typeof rows)[0], (typeof rows)[0]];
    console.log(
      `  now / main: longest event-loop delay ${(now.maxDelay / main.maxDelay).toFixed(3)}, slowest request ${(now.slowest / main.slowest).toFixed(3)}, main thread CPU ${(now.cpu / main.cpu).toFixed(3)}, time to the answer ${(now.wall / main.wall).toFixed(2)} (medians of ${runs}, alternately, each first on every other run)`,
    );
  }
} finally {
  server.close();
  await ledgerSearchThreads().close();
  console.log(`\nafter: ${uptime()}`);
}
