import { randomUUID } from 'node:crypto';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  catalogBackends,
  createLabResultsCatalog,
  type TestCatalog,
} from '../../test/catalog-backends.ts';
import { maxQueryAttempts, queryJobsRepository } from './query-jobs-repository.ts';
import { usersRepository } from './users-repository.ts';

describe.each(catalogBackends())('query job queue on %s', (kind) => {
  let catalog: TestCatalog;
  let userId: string;
  const enqueue = async () =>
    queryJobsRepository(catalog.db).enqueue({
      id: randomUUID(),
      userId,
      datasetId: 'lab-results',
      spec: { dataset: 'lab-results' },
      specSha256: 'x',
      accessLevel: 'aggregate',
      engine: 'duckdb',
    });

  beforeEach(async () => {
    catalog = await createLabResultsCatalog(kind);
    userId = (
      await usersRepository(catalog.db).create({
        email: 'a@example.org',
        name: 'A',
        role: 'researcher',
      })
    ).id;
  });

  afterEach(async () => {
    await catalog.dispose();
  });

  it('hands each queued job to exactly one of several workers claiming at once', async () => {
    const jobs = queryJobsRepository(catalog.db);
    const queued = [];
    for (let i = 0; i < 6; i += 1) queued.push((await enqueue()).id);
    const claims = await Promise.all(
      Array.from({ length: 10 }, (_, i) => jobs.claim(`worker-${i}`)),
    );
    const claimed = claims.filter((job) => job !== undefined).map((job) => job.id);
    expect(new Set(claimed).size).toBe(claimed.length);
    // Every job is eventually taken, none twice.
    for (let next = await jobs.claim('late'); next; next = await jobs.claim('late'))
      claimed.push(next.id);
    expect(claimed.sort()).toEqual([...queued].sort());
  });

  it('records a submit within the user’s limit of waiting jobs, queued or started by a worker', async () => {
    const jobs = queryJobsRepository(catalog.db);
    const submit = (startedBy?: string) =>
      jobs.submit(
        {
          id: randomUUID(),
          userId,
          datasetId: 'lab-results',
          spec: { dataset: 'lab-results' },
          specSha256: 'x',
          accessLevel: 'aggregate',
          engine: 'duckdb',
        },
        { waitingLimit: 2, ...(startedBy ? { startedBy } : {}) },
      );
    const queued = await submit();
    expect(queued).toMatchObject({ status: 'queued', attempts: 0, startedAt: null });
    const started = await submit('here');
    expect(started).toMatchObject({
      status: 'running',
      attempts: 1,
      spec: { dataset: 'lab-results' },
    });
    expect(started?.startedAt).toBeInstanceOf(Date);
    // Two waiting: a third is refused, and nothing is added.
    expect(await submit('here')).toBeUndefined();
    expect((await jobs.listForUser(userId, { limit: 10, offset: 0 })).total).toBe(2);
    // The started job is the worker's, as a claim would leave it: only it may finish the job…
    await jobs.succeed(started!.id, 'someone-else', {
      summary: {},
      resultKey: 'results/x',
      releaseIds: [],
    });
    expect((await jobs.get(started!.id))?.status).toBe('running');
    // …and a worker that dies leaves it to the reaper, which puts it back in the queue.
    expect(await jobs.reapStale(new Date(Date.now() + 60_000))).toBe(1);
    expect(await jobs.get(started!.id)).toMatchObject({ status: 'queued', attempts: 1 });
    // One ended job makes room for one more.
    await jobs.claim('other');
    await jobs.claim('other');
    await jobs.fail(queued!.id, 'other', 'cancelled', { message: 'cancelled' });
    expect(await submit()).toMatchObject({ status: 'queued' });
  });

  it('requeues the job of a worker that stopped beating, and fails it after the last attempt', async () => {
    const jobs = queryJobsRepository(catalog.db);
    const { id } = await enqueue();
    for (let attempt = 1; attempt <= maxQueryAttempts; attempt += 1) {
      const claimed = await jobs.claim('dies');
      expect(claimed?.id).toBe(id);
      expect(claimed?.attempts).toBe(attempt);
      expect(await jobs.reapStale(new Date(Date.now() + 60_000))).toBe(1);
    }
    expect(await jobs.get(id)).toMatchObject({
      status: 'failed',
      error: { message: expect.stringContaining('stopped') },
    });
  });

  it('lets only the worker that owns a job finish it, and cancels through the heartbeat', async () => {
    const jobs = queryJobsRepository(catalog.db);
    const { id } = await enqueue();
    await jobs.claim('owner');
    await jobs.succeed(id, 'someone-else', { summary: {}, resultKey: 'results/x', releaseIds: [] });
    expect((await jobs.get(id))?.status).toBe('running');
    expect(await jobs.heartbeat(id, 'owner')).toEqual({ cancel: false, lost: false });
    // A worker that does not own the job has lost it: not a cancel by its user.
    expect(await jobs.heartbeat(id, 'someone-else')).toEqual({ cancel: false, lost: true });
    await jobs.requestCancel(id);
    expect(await jobs.heartbeat(id, 'owner')).toEqual({ cancel: true, lost: false });
    await jobs.fail(id, 'owner', 'cancelled', { message: 'cancelled by the user' });
    expect((await jobs.get(id))?.status).toBe('cancelled');
  });

  it('stores a result kept in the catalog only with the success of the worker that owns the job', async () => {
    const jobs = queryJobsRepository(catalog.db);
    const { id } = await enqueue();
    await jobs.claim('owner');
    const rows = [
      { code: 'O\'Brien \\ "x"', rows: 12, mean: 98.60000000000001, suppressed: false },
    ];
    const outcome = { summary: {}, resultKey: 'results/x', releaseIds: [], rows };
    // A worker whose lease ran out: neither the success nor the rows.
    expect(await jobs.succeed(id, 'someone-else', outcome)).toBeUndefined();
    expect(await jobs.storedRows(id)).toBeUndefined();
    expect((await jobs.get(id))?.status).toBe('running');
    const done = await jobs.succeed(id, 'owner', outcome);
    expect(done).toMatchObject({ id, status: 'succeeded', resultKey: 'results/x' });
    expect(await jobs.storedRows(id)).toEqual(rows);
    // Ended once: a second success (a late duplicate) changes nothing and stores nothing more.
    expect(await jobs.succeed(id, 'owner', { ...outcome, rows: [] })).toBeUndefined();
    expect(await jobs.storedRows(id)).toEqual(rows);
  });
});
