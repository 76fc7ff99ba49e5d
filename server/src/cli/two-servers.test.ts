import type { ChildProcessWithoutNullStreams } from 'node:child_process';
import { createReadStream } from 'node:fs';
import { mkdtemp, rm, stat } from 'node:fs/promises';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, type TestDatabase } from '../../test/catalog-backends.ts';
import { contractFile } from '../../test/ingest-helpers.ts';
import { runMedlake, startMedlake, stopMedlake } from '../../test/medlake-process.ts';
import { s3DeploymentEnv } from '../../test/s3.ts';
import { publishSyntheticLabResults } from '../../test/synthetic-lake.ts';
import { datasetsRepository } from '../catalog/datasets-repository.ts';
import { jobsRepository } from '../catalog/jobs-repository.ts';
import { releasesRepository } from '../catalog/releases-repository.ts';
import { generateExports } from '../demo/generate-exports.ts';
import { loadEnv } from '../env.ts';
import { openPlatform, type Platform } from '../platform.ts';

/**
 * Two `medlake serve` on one PostgreSQL, one S3 bucket and one vault service: a server killed
 * mid-ingest leaves a job that the other server fails and cleans once its lease expires, and
 * not before; a CLI command started meanwhile leaves a live ingest alone. A server killed
 * mid-query leaves a job that the other puts back in the queue once its lease expires, and runs.
 */
describe('two servers on one catalog', () => {
  let scratch: string;
  let database: TestDatabase;
  let bucket: Awaited<ReturnType<typeof s3DeploymentEnv>>;
  let shared: Record<string, string>;
  const children: ChildProcessWithoutNullStreams[] = [];
  let observer: Platform;
  let bigFile: string;
  let token: string;
  /** The `medlake serve` processes started so far, to stop before a test starts its own. */
  const servers: ChildProcessWithoutNullStreams[] = [];
  const serve = async (name: string) => {
    const started = await startMedlake(['serve', '--port', '0'], path.join(scratch, name), shared);
    children.push(started.child);
    servers.push(started.child);
    return started;
  };

  beforeAll(async () => {
    scratch = await mkdtemp(path.join(tmpdir(), 'medlake-two-servers-'));
    database = await createTestDatabase('postgres');
    bucket = await s3DeploymentEnv();
    const certs = path.join(scratch, 'certs');
    await runMedlake(['vault', 'certs', certs], path.join(scratch, 'vault-host'));
    const vault = await startMedlake(
      ['vault', 'serve', '--certs', certs, '--port', '0'],
      path.join(scratch, 'vault-host'),
    );
    children.push(vault.child);
    const secret = 'a-secret-every-server-shares-0123456789';
    shared = {
      DATABASE_URL: 'databaseUrl' in database.location ? database.location.databaseUrl : '',
      ...bucket.env,
      AWS_ACCESS_KEY_ID: process.env.AWS_ACCESS_KEY_ID ?? '',
      AWS_SECRET_ACCESS_KEY: process.env.AWS_SECRET_ACCESS_KEY ?? '',
      MEDLAKE_VAULT_URL: vault.url,
      MEDLAKE_VAULT_CA_PATH: path.join(certs, 'ca.crt'),
      MEDLAKE_VAULT_CLIENT_CERT_PATH: path.join(certs, 'client.crt'),
      MEDLAKE_VAULT_CLIENT_KEY_PATH: path.join(certs, 'client.key'),
      MEDLAKE_DOWNLOAD_SECRET: secret,
      MEDLAKE_AUDIT_SECRET: secret,
      MEDLAKE_ACCOUNTS_SECRET: secret,
      MEDLAKE_PRIVACY_SECRET: secret,
    };
    const cliHome = path.join(scratch, 'cli');
    await runMedlake(['hospitals', 'add', 'h01', '--name', 'Hospital 1'], cliHome, shared);
    await runMedlake(
      ['datasets', 'create', '--contract', contractFile('lab-results')],
      cliHome,
      shared,
    );
    await runMedlake(
      ['users', 'create', '-e', 'admin@example.org', '-n', 'Admin', '-r', 'admin'],
      cliHome,
      shared,
    );
    token = (
      await runMedlake(['users', 'token', '-e', 'admin@example.org'], cliHome, shared)
    ).trim();
    // Big enough to be still ingesting when its server is killed.
    const [big] = await generateExports({
      hospitals: 1,
      months: 1,
      rows: 400_000,
      outDir: path.join(scratch, 'exports'),
      firstMonth: '2024-03',
    });
    bigFile = big?.file ?? '';
    // The test's own view of the catalog and the bucket, from a home of its own.
    observer = await openPlatform(
      loadEnv({ ...shared, MEDLAKE_HOME: path.join(scratch, 'observer'), LOG_LEVEL: 'silent' }),
      { migrate: false },
    );
  }, 240_000);

  afterAll(async () => {
    await observer?.close();
    for (const child of children) await stopMedlake(child, 'SIGKILL');
    await bucket?.drop();
    await database?.dispose();
    await rm(scratch, { recursive: true, force: true });
  });

  it('fails and cleans the ingest of a killed server once its lease expires, and only then', async () => {
    const [first, second] = await Promise.all([serve('server-a'), serve('server-b')]);

    // An upload to the first server, left running.
    const address = new URL(first.url);
    const upload = request({
      host: address.hostname,
      port: address.port,
      method: 'POST',
      path: '/api/uploads?dataset=lab-results&hospital=h01&month=2024-03',
      headers: {
        'content-type': 'text/csv',
        'content-length': String((await stat(bigFile)).size),
        authorization: `Bearer ${token}`,
      },
    });
    upload.on('error', () => undefined);
    createReadStream(bigFile).pipe(upload);

    const jobs = jobsRepository(observer.catalog.db);
    await expect
      .poll(
        async () => {
          const [job] = await jobs.listRunning('ingest');
          const phase = (job?.progress as { phase?: string } | null)?.phase;
          return phase !== undefined && phase !== 'landing';
        },
        { timeout: 120_000, interval: 250 },
      )
      .toBe(true);
    const [running] = await jobs.listRunning('ingest');
    const jobId = running?.id ?? '';

    // A CLI command beside the live servers cleans up at its start: it leaves this one alone.
    await runMedlake(['hospitals', 'list'], path.join(scratch, 'cli'), shared);
    expect((await jobs.get(jobId))?.status).toBe('running');

    await stopMedlake(first.child, 'SIGKILL');
    // Dead, but its lease still holds: nobody fails it yet.
    expect((await jobs.get(jobId))?.status).toBe('running');

    // The second server fails it once the lease has run out (30 s, swept every 15 s).
    await expect
      .poll(async () => (await jobs.get(jobId))?.status, { timeout: 90_000, interval: 1000 })
      .toBe('failed');
    const failed = await jobs.get(jobId);
    expect(JSON.stringify(failed?.error)).toMatch(/stopped before it finished/);
    // Nothing published, nothing left in the bucket.
    const releases = releasesRepository(observer.catalog.db);
    expect(await releases.current('lab-results', 'h01', '2024-03')).toBeUndefined();
    await expect
      .poll(
        async () => [
          ...(await observer.store.list('landing/')),
          ...(await observer.store.list('lake/')),
        ],
        { timeout: 30_000 },
      )
      .toEqual([]);
    expect((await jobs.get(jobId))?.finishedAt).not.toBeNull();
    expect(second.child.exitCode).toBeNull();
  }, 300_000);

  it('requeues the query of a killed server once its lease expires, and the other runs it', async () => {
    // The servers of the test before would take the job too: only the two started here run.
    for (const child of servers.splice(0)) await stopMedlake(child);
    const cliHome = path.join(scratch, 'cli');
    await runMedlake(
      ['grants', 'add', '-e', 'admin@example.org', '-d', 'lab-results', '-l', 'row'],
      cliHome,
      shared,
    );
    // Months before the one the ingest test leaves empty, big enough to keep DuckDB busy.
    const dataset = await datasetsRepository(observer.catalog.db).get('lab-results');
    if (!dataset) throw new Error('the lab-results dataset is missing');
    await publishSyntheticLabResults(observer, dataset, {
      hospitals: 1,
      months: 2,
      rowsPerRelease: 3_000_000,
    });
    const [first, second] = await Promise.all([serve('server-c'), serve('server-d')]);
    const ownerOf = async (id: string) =>
      observer.catalog.db
        .selectFrom('query_jobs')
        .select(['status', 'worker_id', 'attempts'])
        .where('id', '=', id)
        .executeTakeFirstOrThrow();
    const workedBy = (child: ChildProcessWithoutNullStreams) => `:${child.pid}:`;

    // Exact percentiles per test and age: seconds of work, still running when its server dies.
    const submitted = await fetch(`${first.url}/api/v1/queries`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
      body: JSON.stringify({
        dataset: 'lab-results',
        groupBy: [{ column: 'code' }, { column: 'age' }],
        measures: [
          { fn: 'percentile', column: 'value', p: 0.5 },
          { fn: 'percentile', column: 'value', p: 0.9 },
          { fn: 'patients' },
        ],
      }),
    });
    expect(submitted.status).toBe(202);
    const { id } = (await submitted.json()) as { id: string };
    await expect
      .poll(async () => (await ownerOf(id)).worker_id ?? '', { timeout: 30_000, interval: 50 })
      .toContain(workedBy(first.child));

    await stopMedlake(first.child, 'SIGKILL');
    // Dead, but its lease still holds: the job is neither requeued nor finished yet.
    expect(await ownerOf(id)).toMatchObject({ status: 'running', attempts: 1 });

    // The other server requeues it once the lease has run out (30 s, swept every 15 s) and runs
    // it again from the start.
    await expect
      .poll(async () => (await ownerOf(id)).status, { timeout: 150_000, interval: 1000 })
      .toBe('succeeded');
    const finished = await ownerOf(id);
    expect(finished.attempts).toBe(2);
    expect(finished.worker_id).toContain(workedBy(second.child));

    // The result is read through the server that is left.
    const page = await fetch(`${second.url}/api/v1/queries/${id}/results?pageSize=5`, {
      headers: { authorization: `Bearer ${token}` },
    });
    expect(page.status).toBe(200);
    const body = (await page.json()) as { totalRows: number; rows: unknown[] };
    expect(body.totalRows).toBeGreaterThan(0);
    expect(body.rows).toHaveLength(5);
    expect(second.child.exitCode).toBeNull();
  }, 400_000);
});
