import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { usersRepository } from '../src/catalog/users-repository.ts';
import { publishSyntheticLabResults } from './synthetic-lake.ts';
import { loadEnv } from '../src/env.ts';
import { homeLayout } from '../src/home-layout.ts';
import { openPlatform, type Platform } from '../src/platform.ts';
import { loadDemoData } from '../src/use-cases/load-demo-data.ts';
import { addUser, createApiToken, grantDatasetAccess } from '../src/use-cases/manage-access.ts';
import { saveDataset } from '../src/use-cases/manage-datasets.ts';
import { copyEmptyPglite } from './catalog-backends.ts';
import { contractFile } from './ingest-helpers.ts';
import { testActor } from './helper.ts';

const repositoryRoot = fileURLToPath(new URL('../..', import.meta.url));
const bin = path.join(repositoryRoot, 'server/bin/medlake.js');

/** The dataset of queries that take a while: the demo's contract over a synthetic lake. */
export const largeDataset = 'lab-results-large';

/** API tokens for the accounts of a demo server, made before it starts. */
export type DemoTokens = {
  /** A researcher with aggregate access to both datasets. */
  aggregate: string;
  /** Two more such researchers, for tests that need a release ledger nothing else touches. */
  second: string;
  notebook: string;
  /** A researcher with row access to both datasets. */
  row: string;
  /** A token of the aggregate researcher that expired yesterday. */
  expired: string;
};

export type DemoServer = {
  /** Where it listens, e.g. http://127.0.0.1:41234 (no trailing slash). */
  url: string;
  tokens: DemoTokens;
  /** What the server printed so far, for a failure's message. */
  output(): string;
  /** Stops the server and deletes its home. */
  close(): Promise<void>;
};

/**
 * A real `medlake serve` in a child process, as `npm start` runs it, over a fresh
 * MEDLAKE_HOME that holds the demo data set (loaded by the same code as `serve --demo`), a
 * synthetic `lab-results-large` dataset for queries that take seconds, and researchers with
 * tokens (DemoTokens). The catalog is prepared before the server starts, since a running
 * server owns its PGlite directory.
 */
export async function startDemoServer(
  options: { largeRowsPerRelease?: number; env?: Record<string, string> } = {},
): Promise<DemoServer> {
  const home = path.join(await mkdtemp(path.join(tmpdir(), 'medlake-demo-server-')), 'home');
  // Under vitest, a copy of the empty catalog the global setup made saves an initdb.
  if (process.env.MEDLAKE_TEST_PGLITE_TEMPLATE) await copyEmptyPglite(homeLayout(home).catalog);
  const env = loadEnv({ MEDLAKE_HOME: home, LOG_LEVEL: 'silent' });
  const removeHome = async () => {
    await rm(path.dirname(home), { recursive: true, force: true });
    await rm(env.MEDLAKE_AUDIT_CHECKPOINT_DIR, { recursive: true, force: true });
  };

  let tokens: DemoTokens;
  const platform = await openPlatform(env, { migrate: true });
  try {
    await loadDemoData(platform);
    await addLargeDataset(platform, options.largeRowsPerRelease ?? 1_500_000);
    tokens = await addResearchers(platform);
  } catch (error) {
    await platform.close();
    await removeHome();
    throw error;
  }
  await platform.close();

  const server = spawn(process.execPath, [bin, 'serve'], {
    cwd: repositoryRoot,
    env: {
      PATH: process.env.PATH ?? '',
      MEDLAKE_HOME: home,
      HOST: '127.0.0.1',
      PORT: '0',
      LOG_LEVEL: 'warn',
      // A test machine running many suites lags; shedding is tested on its own (load-limits.test).
      MEDLAKE_SHED_EVENT_LOOP_DELAY_MS: '60000',
      ...options.env,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let printed = '';
  const collect = (chunk: Buffer) => (printed += chunk.toString());
  server.stdout.on('data', collect);
  server.stderr.on('data', collect);
  const stop = async () => {
    if (server.exitCode === null && server.signalCode === null) {
      const exited = once(server, 'exit');
      server.kill('SIGTERM');
      await exited;
    }
    await removeHome();
  };
  try {
    const url = await listeningAt(server, () => printed);
    return { url, tokens, output: () => printed, close: stop };
  } catch (error) {
    await stop();
    throw error;
  }
}

function listeningAt(server: ChildProcess, printed: () => string): Promise<string> {
  return new Promise((resolve, reject) => {
    const check = () => {
      const match = printed().match(/medlake is running at (http:\/\/\S+?)\/ /);
      if (match?.[1]) resolve(match[1]);
    };
    server.stdout?.on('data', check);
    server.once('exit', (code) =>
      reject(new Error(`medlake serve exited with ${code} before listening:\n${printed()}`)),
    );
  });
}

async function addLargeDataset(platform: Platform, rowsPerRelease: number): Promise<void> {
  const contract = JSON.parse(await readFile(contractFile('lab-results'), 'utf8')) as object;
  const dataset = await saveDataset(platform, {
    ...contract,
    name: largeDataset,
    title: 'Laboratory results, synthetic and large',
  });
  await publishSyntheticLabResults(platform, dataset, { hospitals: 1, months: 2, rowsPerRelease });
}

async function addResearchers(platform: Platform): Promise<DemoTokens> {
  const researcher = async (email: string, level: 'aggregate' | 'row') => {
    await addUser(platform, testActor, {
      email,
      name: email.split('@')[0] ?? email,
      role: 'researcher',
    });
    for (const datasetId of ['lab-results', largeDataset]) {
      await grantDatasetAccess(platform, testActor, { email, datasetId, level });
    }
    const { token } = await createApiToken(platform, testActor, { email, name: 'python', days: 1 });
    return token;
  };
  const aggregate = await researcher('aggregate@example.org', 'aggregate');
  const second = await researcher('second@example.org', 'aggregate');
  const notebook = await researcher('notebook@example.org', 'aggregate');
  const row = await researcher('row@example.org', 'row');
  const user = await usersRepository(platform.catalog.db).byEmail('aggregate@example.org');
  if (!user) throw new Error('the aggregate researcher was not made');
  const { token: expired } = await usersRepository(platform.catalog.db).createToken(user.id, {
    name: 'expired',
    expiresAt: new Date(Date.now() - 86_400_000),
    scopes: ['query'],
  });
  return { aggregate, second, notebook, row, expired };
}
