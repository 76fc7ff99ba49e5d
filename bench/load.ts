// npm run bench:load — medlake under load: a server (its own process) on a synthetic lake,
// driven from this process with autocannon on 127.0.0.1 by researchers browsing the data
// dictionary, paging a result and submitting heavy queries, while a steward uploads months one
// after another. Prints requests per second, latency percentiles, errors per endpoint and the
// server's peak memory; and, as the baseline from the same command, health and paging measured
// on the idle server first, with the ratio of their p95 under load to idle.
// Options: --rows N (lake rows, default 5000000), --seconds N (load phase, default 30),
// --dir DIR (where the lake is kept between runs).
import { readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import autocannon from 'autocannon';
import { generateExports } from '../server/src/demo/generate-exports.ts';
import { loadEnv } from '../server/src/env.ts';
import { openPlatform } from '../server/src/platform.ts';
import { assignSteward } from '../server/src/use-cases/accounts/manage-users.ts';
import { addUser, createApiToken } from '../server/src/use-cases/manage-access.ts';
import { addHospital } from '../server/src/use-cases/manage-datasets.ts';
import { hospitalsRepository } from '../server/src/catalog/hospitals-repository.ts';
import { usersRepository } from '../server/src/catalog/users-repository.ts';
import { startServer } from './query-cases.ts';
import { buildQueryLake } from './query-lake.ts';

const { values } = parseArgs({
  options: {
    rows: { type: 'string', default: '5000000' },
    seconds: { type: 'string', default: '30' },
    dir: { type: 'string', default: path.join(tmpdir(), 'medlake-bench-load') },
  },
});
const rows = Number(values.rows);
const seconds = Number(values.seconds);
const hospitals = 4;
const months = 12;
const home = path.join(values.dir, `rows-${rows}`);
const benchActor = { userId: null, name: 'bench', source: 'bench' };

console.log(`lake: ${rows.toLocaleString('en-US')} rows in ${home}`);
const lake = await buildQueryLake(home, {
  hospitals,
  months,
  rowsPerRelease: Math.ceil(rows / (hospitals * months)),
});

// A steward with a token, for a hospital of the generated exports, and their files.
const uploads = await generateExports({
  hospitals: 1,
  months: 6,
  rows: 20_000,
  outDir: path.join(values.dir, 'uploads'),
  firstMonth: '2030-01',
});
const stewardToken = await prepareSteward(uploads[0]!.hospital);

type Endpoint = {
  name: string;
  connections: number;
  requests: autocannon.Request[];
};

// Every bench client shares 127.0.0.1 and one researcher's token: the per-address and per-token
// limits are lifted for the load phase, and measured at their defaults in the flood phase below.
const server = await startServer(lake.home, {
  MEDLAKE_RATE_LIMIT_PER_ADDRESS: '1000000',
  MEDLAKE_RATE_LIMIT_PER_TOKEN: '1000000',
});
const base = server.url;
let peakMemory: number;
let idle: { health: autocannon.Result; paging: autocannon.Result };
let loaded: autocannon.Result[];
let endpoints: Endpoint[];
const uploadTimes: number[] = [];
const uploadStatuses = new Map<number, number>();
try {
  const researcher = { authorization: `Bearer ${lake.token}` };

  // One finished query whose result the researchers page through.
  const paged = (await (
    await fetch(`${base}/api/v1/queries?wait=30`, {
      method: 'POST',
      headers: { ...researcher, 'content-type': 'application/json' },
      body: JSON.stringify({
        dataset: 'lab-results',
        groupBy: [{ column: 'code' }, { column: 'hospital' }, { column: 'month' }],
        measures: [{ fn: 'count' }, { fn: 'patients' }, { fn: 'mean', column: 'value' }],
      }),
    })
  ).json()) as { id: string; status: string };
  if (paged.status !== 'succeeded')
    throw new Error(`the query to page did not finish: ${JSON.stringify(paged)}`);

  const heavySpecs = [
    {
      dataset: 'lab-results',
      groupBy: [{ column: 'code' }, { column: 'sex' }, { column: 'age', bands: [18, 40, 65] }],
      measures: [{ fn: 'patients' }, { fn: 'percentile', column: 'value', p: 0.9 }],
    },
    {
      dataset: 'lab-results',
      groupBy: [{ column: 'hospital' }, { column: 'collected_at', bucket: 'month' }],
      measures: [{ fn: 'count' }, { fn: 'patients' }, { fn: 'mean', column: 'value' }],
    },
  ];

  endpoints = [
    {
      name: 'GET /api/health',
      connections: 2,
      requests: [{ method: 'GET', path: '/api/health' }],
    },
    {
      name: 'GET dictionary (search, paged)',
      connections: 4,
      requests: ['gluc', 'hemo', 'sod', 'chol'].map((search) => ({
        method: 'GET',
        path: `/api/v1/datasets/lab-results/dictionary?search=${search}&pageSize=20`,
        headers: researcher,
      })),
    },
    {
      name: 'GET result page',
      connections: 4,
      requests: [1, 2, 3].map((page) => ({
        method: 'GET',
        path: `/api/v1/queries/${paged.id}/results?page=${page}&pageSize=100`,
        headers: researcher,
      })),
    },
    {
      name: 'POST heavy query',
      connections: 2,
      requests: heavySpecs.map((spec) => ({
        method: 'POST',
        path: '/api/v1/queries',
        headers: { ...researcher, 'content-type': 'application/json' },
        body: JSON.stringify(spec),
      })),
    },
  ];

  /** Runs autocannon against one endpoint for the given seconds. */
  function drive(endpoint: Endpoint, duration: number): Promise<autocannon.Result> {
    return autocannon({
      url: base,
      connections: endpoint.connections,
      duration,
      requests: endpoint.requests,
    });
  }

  // The baseline: health and paging on the idle server, in this same command.
  idle = {
    health: await drive(endpoints[0]!, 5),
    paging: await drive(endpoints[2]!, 5),
  };

  // The load: every endpoint at once, and a steward uploading one month after another.
  let uploading = true;
  const steward = (async () => {
    for (let i = 0; uploading; i = (i + 1) % uploads.length) {
      const upload = uploads[i]!;
      const started = performance.now();
      const response = await fetch(
        `${base}/api/uploads?dataset=lab-results&hospital=${upload.hospital}&month=${upload.month}&fileName=bench.csv`,
        {
          method: 'POST',
          headers: { authorization: `Bearer ${stewardToken}`, 'content-type': 'text/csv' },
          body: await readFile(upload.file),
        },
      );
      await response.arrayBuffer();
      uploadTimes.push(performance.now() - started);
      uploadStatuses.set(response.status, (uploadStatuses.get(response.status) ?? 0) + 1);
    }
  })();
  loaded = await Promise.all(endpoints.map((endpoint) => drive(endpoint, seconds)));
  uploading = false;
  await steward;

  peakMemory = await peakMemoryOf(server.pid);
} finally {
  await server.stop();
}

// The flood: one token asking as fast as 8 connections can, while the health check (never
// limited) goes on beside it.
const floodSeconds = 10;
// A token limit low enough for a 10-second flood to pass it on a slow machine; the address limit
// stays at its default.
const floodTokenLimit = 120;
const floodServer = await startServer(lake.home, {
  MEDLAKE_RATE_LIMIT_PER_TOKEN: String(floodTokenLimit),
});
let flood: autocannon.Result;
let floodHealth: autocannon.Result;
try {
  const drive = (connections: number, requests: autocannon.Request[]) =>
    autocannon({ url: floodServer.url, connections, duration: floodSeconds, requests });
  [flood, floodHealth] = await Promise.all([
    drive(8, [
      {
        method: 'GET',
        path: '/api/v1/datasets',
        headers: { authorization: `Bearer ${lake.token}` },
      },
    ]),
    drive(2, [{ method: 'GET', path: '/api/health' }]),
  ]);
} finally {
  await floodServer.stop();
}

const row = (name: string, result: autocannon.Result) => ({
  endpoint: name,
  'req/s': Math.round(result.requests.average),
  p50: result.latency.p50,
  p95: result.latency.p97_5,
  p99: result.latency.p99,
  '2xx': result['2xx'],
  'non-2xx': result.non2xx,
  // Heavy submits beyond a user's queue limit are refused on purpose (MEDLAKE_QUERY_QUEUE_PER_USER).
  '429':
    (result as { statusCodeStats?: Record<string, { count: number }> }).statusCodeStats?.['429']
      ?.count ?? 0,
  // Shed by the server when its event loop lags (MEDLAKE_SHED_EVENT_LOOP_DELAY_MS).
  '503':
    (result as { statusCodeStats?: Record<string, { count: number }> }).statusCodeStats?.['503']
      ?.count ?? 0,
  errors: result.errors + result.timeouts,
});
console.log(
  `\nunder load for ${seconds} s (latency in ms; p95 is autocannon's p97.5, its nearest):`,
);
console.table(endpoints.map((endpoint, i) => row(endpoint.name, loaded[i]!)));
const sorted = uploadTimes.toSorted((a, b) => a - b);
console.log(
  `steward uploads (20,000 rows each): ${uploadTimes.length}, median ${Math.round(sorted[Math.floor(sorted.length / 2)] ?? 0)} ms, answers ${[...uploadStatuses].map(([status, n]) => `${status}×${n}`).join(' ')}`,
);
console.log('\nidle baseline (same server, before the load):');
console.table([row('GET /api/health', idle.health), row('GET result page', idle.paging)]);
console.log(
  `ratio p95 under load / idle: health ${(loaded[0]!.latency.p97_5 / Math.max(1, idle.health.latency.p97_5)).toFixed(1)}, result page ${(loaded[2]!.latency.p97_5 / Math.max(1, idle.paging.latency.p97_5)).toFixed(1)}`,
);
console.log(`server peak memory: ${Math.round(peakMemory / 1024)} MiB`);
console.log(
  `\nflood for ${floodSeconds} s with one token, limited to ${floodTokenLimit} a minute (default ${loadEnv({}).MEDLAKE_RATE_LIMIT_PER_TOKEN}):`,
);
console.table([
  row('GET /api/v1/datasets (one token)', flood),
  row('GET /api/health', floodHealth),
]);
// The responsiveness docs/reliability.md promises while heavy queries queue.
const bounds = { health: 100, paging: 250 };
const held = loaded[0]!.latency.p97_5 <= bounds.health && loaded[2]!.latency.p97_5 <= bounds.paging;
console.log(
  `bound (p95 under load): health ${bounds.health} ms, result page ${bounds.paging} ms: ${held ? 'held' : 'NOT held'}`,
);

/** The process's peak resident memory (VmHWM), in KiB. */
async function peakMemoryOf(pid: number): Promise<number> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8');
  return Number(/VmHWM:\s+(\d+) kB/.exec(status)?.[1] ?? 0);
}

/**
 * Before the server starts: the queries an earlier run left queued are cancelled (each run
 * starts with an empty queue), and a steward of the hospital (added if new) gets a token.
 */
async function prepareSteward(hospitalId: string): Promise<string> {
  const platform = await openPlatform(loadEnv({ MEDLAKE_HOME: lake.home, LOG_LEVEL: 'silent' }), {
    migrate: true,
  });
  try {
    await platform.catalog.db
      .updateTable('query_jobs')
      .set({ status: 'cancelled', finished_at: new Date() })
      .where('status', 'in', ['queued', 'running'])
      .execute();
    if (!(await hospitalsRepository(platform.catalog.db).get(hospitalId))) {
      await addHospital(platform, benchActor, { id: hospitalId, name: hospitalId });
    }
    const email = 'bench-steward@example.org';
    if (!(await usersRepository(platform.catalog.db).byEmail(email))) {
      await addUser(platform, benchActor, { email, name: 'Steward', role: 'steward' });
      await assignSteward(platform, benchActor, { email, hospitalId, assigned: true });
    }
    return (await createApiToken(platform, benchActor, { email, name: 'bench', days: 1 })).token;
  } finally {
    await platform.close();
  }
}
