import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startServer } from '../../../bench/query-cases.ts';
import { buildQueryLake } from '../../../bench/query-lake.ts';
import { listFiles, stewardWithToken } from '../../test/ingest-helpers.ts';
import { publishedObjects } from '../../test/published-objects.ts';
import { releasesRepository } from '../catalog/releases-repository.ts';
import { generateExports, type GeneratedExport } from '../demo/generate-exports.ts';
import { loadEnv } from '../env.ts';
import { openPlatform } from '../platform.ts';

/** Sends SIGKILL and waits until the process is gone. */
async function killHard(pid: number): Promise<void> {
  process.kill(pid, 'SIGKILL');
  for (;;) {
    try {
      process.kill(pid, 0);
    } catch {
      return;
    }
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

/** Checks `condition` every 20 ms until it holds, for at most `seconds`. */
async function until(condition: () => Promise<boolean>, seconds: number, what: string) {
  const deadline = Date.now() + seconds * 1000;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`gave up waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

/**
 * `medlake serve` killed with SIGKILL — no shutdown hook runs — while it runs a query and while
 * it ingests an upload, then started again on the same home.
 */
describe('the server killed with SIGKILL', () => {
  let home: string;
  let researcher: { authorization: string };
  let steward: { authorization: string };
  let upload: GeneratedExport;

  beforeAll(async () => {
    home = await mkdtemp(path.join(tmpdir(), 'medlake-server-killed-'));
    // Big enough that a query with percentiles runs for a while on this machine.
    const lake = await buildQueryLake(path.join(home, 'home'), {
      hospitals: 2,
      months: 3,
      rowsPerRelease: 250_000,
    });
    researcher = { authorization: `Bearer ${lake.token}` };
    const generated = await generateExports({
      hospitals: 1,
      months: 1,
      rows: 300_000,
      outDir: path.join(home, 'exports'),
      firstMonth: '2031-01',
    });
    upload = generated[0]!;
    const platform = await openPlatform(loadEnv({ MEDLAKE_HOME: lake.home, LOG_LEVEL: 'silent' }));
    try {
      // The generated export's hospital, h01, is one of the lake's.
      const token = await stewardWithToken(platform, 'steward@example.org', upload.hospital);
      steward = { authorization: `Bearer ${token}` };
    } finally {
      await platform.close();
    }
  }, 600_000);

  afterAll(async () => {
    await rm(home, { recursive: true, force: true });
  });

  const medlakeHome = () => path.join(home, 'home');

  it('during a query: the job goes back to the queue at the restart and runs to the end', async () => {
    const spec = {
      dataset: 'lab-results',
      groupBy: [{ column: 'code' }, { column: 'sex' }, { column: 'age', bands: [18, 40, 65] }],
      measures: [
        { fn: 'patients' },
        { fn: 'percentile', column: 'value', p: 0.9 },
        { fn: 'percentile', column: 'value', p: 0.1 },
      ],
    };
    const first = await startServer(medlakeHome(), { MEDLAKE_QUERY_CONCURRENCY: '1' });
    let id: string;
    try {
      const submitted = await fetch(`${first.url}/api/v1/queries`, {
        method: 'POST',
        headers: { ...researcher, 'content-type': 'application/json' },
        body: JSON.stringify(spec),
      });
      expect(submitted.status).toBe(202);
      id = ((await submitted.json()) as { id: string }).id;
      await until(
        async () => {
          const job = (await (
            await fetch(`${first.url}/api/v1/queries/${id}`, { headers: researcher })
          ).json()) as { status: string };
          if (job.status === 'succeeded') throw new Error('the query ended before the kill');
          return job.status === 'running';
        },
        60,
        'the query to run',
      );
    } finally {
      await killHard(first.pid);
    }

    const second = await startServer(medlakeHome(), { MEDLAKE_QUERY_CONCURRENCY: '1' });
    try {
      let job: { status: string; error?: unknown } = { status: 'running' };
      await until(
        async () => {
          job = (await (
            await fetch(`${second.url}/api/v1/queries/${id}?wait=5`, { headers: researcher })
          ).json()) as typeof job;
          return job.status !== 'running' && job.status !== 'queued';
        },
        120,
        'the requeued query to end',
      );
      expect(job).toMatchObject({ status: 'succeeded' });
      const page = (await (
        await fetch(`${second.url}/api/v1/queries/${id}/results?page=1&pageSize=10`, {
          headers: researcher,
        })
      ).json()) as { rows: unknown[] };
      expect(page.rows.length).toBeGreaterThan(0);
    } finally {
      await second.stop();
    }
  }, 300_000);

  it('during an upload: at the restart the upload shows failed, nothing of it is published or left behind', async () => {
    const monthFolder = path.join(
      medlakeHome(),
      'objects/lake/lab-results',
      `hospital=${upload.hospital}`,
      `month=${upload.month}`,
    );
    const first = await startServer(medlakeHome());
    try {
      const sending = fetch(
        `${first.url}/api/uploads?dataset=lab-results&hospital=${upload.hospital}&month=${upload.month}&fileName=killed.csv`,
        {
          method: 'POST',
          headers: { ...steward, 'content-type': 'text/csv' },
          body: await readFile(upload.file),
        },
      ).catch((error: unknown) => error);
      // Killed once the ingest has begun to write the release's Parquet.
      await until(
        async () => (await listFiles(monthFolder).catch(() => [])).length > 0,
        120,
        'the ingest to write Parquet',
      );
      await killHard(first.pid);
      expect(await sending).toBeInstanceOf(Error);
    } finally {
      await killHard(first.pid).catch(() => undefined);
    }
    // What the killed server left: a job marked running and its files.
    expect(await readdir(path.join(medlakeHome(), 'work'))).toHaveLength(1);

    const second = await startServer(medlakeHome());
    try {
      const uploads = (await (
        await fetch(`${second.url}/api/v1/uploads`, { headers: steward })
      ).json()) as { uploads: Array<{ status: string; error?: { message: string } }> };
      expect(uploads.uploads).toHaveLength(1);
      expect(uploads.uploads[0]).toMatchObject({
        status: 'failed',
        error: { message: expect.stringMatching(/interrupted/) },
      });
      const releases = (await (
        await fetch(`${second.url}/api/v1/releases?hospital=${upload.hospital}`, {
          headers: steward,
        })
      ).json()) as { releases: Array<{ month: string }> };
      expect(releases.releases.length).toBeGreaterThan(0);
      expect(releases.releases.map((release) => release.month)).not.toContain(upload.month);
    } finally {
      await second.stop();
    }
    expect(await listFiles(monthFolder).catch(() => [])).toEqual([]);
    expect(await readdir(path.join(medlakeHome(), 'work'))).toEqual([]);
    expect(await listFiles(path.join(medlakeHome(), 'objects/landing'))).toEqual([]);
    const platform = await openPlatform(
      loadEnv({ MEDLAKE_HOME: medlakeHome(), LOG_LEVEL: 'silent' }),
    );
    try {
      const releases = await releasesRepository(platform.catalog.db).list();
      expect(releases).toHaveLength(6);
      // Each release's files (and pairs file, where recorded), nothing of the killed ingests.
      expect((await platform.store.list('lake/')).sort()).toEqual(
        await publishedObjects(platform.catalog.db, releases),
      );
    } finally {
      await platform.close();
    }
  }, 300_000);
});
