import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { TestPlatform } from '../../../test/helper.ts';
import { createSyntheticLabPlatform, researcherWithAccess } from '../../../test/query-helpers.ts';
import type { User } from '../../catalog/users-repository.ts';
import { createLogger } from '../../logger.ts';
import type { Platform } from '../../platform.ts';
import { cancelQuery, getQuery, listQueries, waitForQuery } from './read-query.ts';
import { submitQuery } from './submit-query.ts';
import { startQueryWorker } from './query-worker.ts';
import { createSparkEngine } from '../../engines/spark/spark-engine.ts';
import type { QueryEngine } from '../../engines/types.ts';
import { testSparkUrl } from '../../../test/spark.ts';

/** A query that keeps DuckDB busy for seconds on the synthetic lake: exact percentiles. */
const heavy = {
  dataset: 'lab-results',
  groupBy: [{ column: 'code' }, { column: 'age' }],
  measures: [
    { fn: 'percentile', column: 'value', p: 0.5 },
    { fn: 'percentile', column: 'value', p: 0.9 },
    { fn: 'patients' },
  ],
};

/**
 * An engine that runs each job's statement on `engine` but holds its answer until the run is
 * stopped (cancel, time limit, server stop, failed record), so that a job is still running when
 * a test stops it, however fast the machine: a heavy query that ended first would succeed, and
 * the worker sees a cancel only at a heartbeat. `held` has the signal of each held run, in the
 * order the statements reached the engine; `reached(n)` resolves once `n` of them have.
 */
function holdAnswers(engine: QueryEngine) {
  const held: AbortSignal[] = [];
  const arrivals: (() => void)[] = [];
  const rows: QueryEngine['rows'] = async (statement, options) => {
    const signal = options?.signal;
    if (!signal) return engine.rows(statement, options);
    held.push(signal);
    for (const next of arrivals.splice(0)) next();
    const answer = engine.rows(statement, options);
    await new Promise<void>((resolve) => {
      if (signal.aborted) resolve();
      else signal.addEventListener('abort', () => resolve(), { once: true });
    });
    // The engine stops on the same signal, or has finished: either way no answer goes on.
    await answer.catch(() => undefined);
    throw signal.reason;
  };
  const reached = (count = 1) =>
    new Promise<void>((resolve) => {
      const look = () => {
        if (held.length >= count) resolve();
        else arrivals.push(look);
      };
      look();
    });
  return { engine: { ...engine, rows }, held, reached };
}

describe('query worker, with queries that take a while', () => {
  let platform: TestPlatform;
  let user: User;

  // Building 12 M rows fits in two minutes on two idle cores; it took longer when they were shared.
  beforeAll(async () => {
    platform = await createSyntheticLabPlatform({
      hospitals: 1,
      months: 4,
      rowsPerRelease: 3_000_000,
    });
    user = await researcherWithAccess(platform, 'row@example.org', 'lab-results', 'row');
  }, 600_000);

  afterAll(() => platform.dispose());

  /** Runs the heavy query on a worker of its own; waits `seconds` at most for its end. */
  async function run(on: Platform, act?: (id: string) => Promise<void>, seconds = 60) {
    const worker = startQueryWorker(on, {
      logger: createLogger('silent'),
      heartbeatMs: 100,
      pollMs: 50,
    });
    try {
      const job = await submitQuery(on, { user, source: 'test' }, heavy);
      worker.wake();
      await act?.(job.id);
      return await waitForQuery(on, user, job.id, seconds);
    } finally {
      await worker.stop();
    }
  }

  /** Waits until a worker runs the job, looking every 20 ms at most `looks` times. */
  async function untilRunning(on: Platform, id: string, looks: number) {
    for (let i = 0; i < looks && (await getQuery(on, user, id)).status !== 'running'; i += 1) {
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
  }

  it('runs the heavy query to the end when nothing stops it, reporting progress', async () => {
    const seen: number[] = [];
    const finished = await run(platform, async (id) => {
      for (let i = 0; i < 40; i += 1) {
        const job = await waitForQuery(platform, user, id, 0.25);
        const percent = (job.progress as { percent?: number } | null)?.percent;
        if (percent !== undefined) seen.push(percent);
        if (job.status === 'succeeded') break;
      }
    });
    expect(finished.error).toBeNull();
    expect(finished.status).toBe('succeeded');
    expect(seen.length).toBeGreaterThan(0);
  }, 120_000);

  it('stops a query that runs past the time limit', async () => {
    // The run is held in the engine until it is stopped, so that only the limit can end it:
    // a heavy query that ended within the second would succeed. Its end is awaited for far
    // longer than the limit, but less than the test's time, so that a limit that never
    // comes fails on the assertions below.
    const limitMessage = 'the query ran longer than its limit of 1 seconds and was stopped';
    const holding = holdAnswers(platform.engine);
    const limited = {
      ...platform,
      env: { ...platform.env, MEDLAKE_QUERY_TIMEOUT_SECONDS: 1 },
      engine: holding.engine,
    };
    const finished = await run(limited, undefined, 30);
    expect(holding.held).toHaveLength(1);
    expect((holding.held[0]?.reason as Error | undefined)?.message).toBe(limitMessage);
    expect(finished.status).toBe('failed');
    expect(finished.error?.message).toBe(limitMessage);
    expect(finished.resultKey).toBeNull();
  }, 60_000);

  it('puts a running query back in the queue when the server stops, and runs it after', async () => {
    // The first worker's run is held in the engine until the stop; the second runs on DuckDB.
    const holding = holdAnswers(platform.engine);
    const first = startQueryWorker(
      { ...platform, engine: holding.engine },
      { logger: createLogger('silent'), pollMs: 50 },
    );
    const job = await submitQuery(platform, { user, source: 'test' }, heavy);
    first.wake();
    await holding.reached();
    expect(await getQuery(platform, user, job.id)).toMatchObject({ status: 'running' });
    await first.stop();
    expect(holding.held).toHaveLength(1);
    expect(holding.held[0]?.aborted).toBe(true);
    expect(await getQuery(platform, user, job.id)).toMatchObject({ status: 'queued', error: null });
    const second = startQueryWorker(platform, { logger: createLogger('silent'), pollMs: 50 });
    try {
      const finished = await waitForQuery(platform, user, job.id, 60);
      expect(finished).toMatchObject({ status: 'succeeded', attempts: 2 });
    } finally {
      await second.stop();
    }
  }, 120_000);

  it('starts a submit at once in a worker of this process, and puts it back in the queue when the server stops', async () => {
    // The first worker's run is held in the engine until the stop; the second runs on DuckDB.
    // No poll in the first: the job must reach it through the submit.
    const holding = holdAnswers(platform.engine);
    const held = { ...platform, engine: holding.engine };
    const first = startQueryWorker(held, { logger: createLogger('silent'), pollMs: 600_000 });
    await first.ready;
    // No wake-up: the submit hands its job to the worker, which the catalog records with it.
    const job = await submitQuery(held, { user, source: 'test' }, heavy, { startHere: true });
    expect(job).toMatchObject({ status: 'running', attempts: 1 });
    const audited = await platform.audit.search(
      { action: 'query.submit', target: `query:${job.id}` },
      { page: 1, pageSize: 10 },
    );
    expect(audited.total).toBe(1);
    await holding.reached();
    await first.stop();
    expect(holding.held).toHaveLength(1);
    expect(holding.held[0]?.aborted).toBe(true);
    expect(await getQuery(platform, user, job.id)).toMatchObject({ status: 'queued', error: null });
    const second = startQueryWorker(platform, { logger: createLogger('silent'), pollMs: 50 });
    try {
      const finished = await waitForQuery(platform, user, job.id, 60);
      expect(finished).toMatchObject({ status: 'succeeded', attempts: 2 });
    } finally {
      await second.stop();
    }
  }, 120_000);

  it('stops the run of a submit the catalog refuses, and records nothing of it', async () => {
    // The engine runs each job's statement but holds its answer until the run is stopped, so
    // that the first job is still running when it is listed and cancelled, however fast the
    // machine: a heavy query that ended first would be listed as succeeded, or end between
    // the cancel and the heartbeat that carries it.
    const holding = holdAnswers(platform.engine);
    const held = holding.held;
    // Room in the worker for both, but the user may have one query waiting.
    const one = {
      ...platform,
      env: { ...platform.env, MEDLAKE_QUERY_QUEUE_PER_USER: 1, MEDLAKE_QUERY_CONCURRENCY: 2 },
      engine: holding.engine,
    };
    const listed = () => listQueries(one, user, { page: 1, pageSize: 100 });
    // No poll while the test runs: a look at the queue under way would leave the second submit
    // no place to start in, and its run would not be tried.
    const worker = startQueryWorker(one, {
      logger: createLogger('silent'),
      heartbeatMs: 100,
      pollMs: 600_000,
    });
    try {
      await worker.ready;
      const submits = () =>
        one.audit.search({ action: 'query.submit', actor: user.email }, { page: 1, pageSize: 100 });
      const before = { audited: (await submits()).total, listed: (await listed()).total };
      const first = await submitQuery(one, { user, source: 'test' }, heavy, { startHere: true });
      expect(first.status).toBe('running');
      // The first job's statement is in the engine, held, before the second submit.
      await holding.reached();
      await expect(
        submitQuery(one, { user, source: 'test' }, heavy, { startHere: true }),
      ).rejects.toMatchObject({
        code: 'queue_full',
      });
      // The refused submit's run is stopped as its record fails, before the refusal is
      // answered: if it reached the engine, its statement is stopped already.
      expect(held.slice(1).map((signal) => (signal.reason as Error | undefined)?.message)).toEqual(
        held.slice(1).map(() => 'the query could not be recorded'),
      );
      expect(held[0]?.aborted).toBe(false);
      // One submit recorded, with its one audit entry; of the refused one, neither.
      const audited = await submits();
      expect(audited.entries.filter((entry) => entry.target === `query:${first.id}`)).toHaveLength(
        1,
      );
      expect(audited.total).toBe(before.audited + 1);
      const jobs = await listed();
      expect(jobs.total).toBe(before.listed + 1);
      expect(jobs.jobs.filter((job) => job.status === 'running').map((job) => job.id)).toEqual([
        first.id,
      ]);
      await cancelQuery(one, { user, source: 'test' }, first.id);
      const cancelled = await waitForQuery(one, user, first.id, 60);
      expect(cancelled).toMatchObject({
        status: 'cancelled',
        error: { message: 'cancelled by the user' },
      });
    } finally {
      await worker.stop();
    }
  }, 120_000);

  it('cancels a running query', async () => {
    // The run is held in the engine until it is stopped: cancelled by the user, or never.
    const holding = holdAnswers(platform.engine);
    const finished = await run({ ...platform, engine: holding.engine }, async (id) => {
      await holding.reached();
      expect((await getQuery(platform, user, id)).status).toBe('running');
      await cancelQuery(platform, { user, source: 'test' }, id);
    });
    expect(holding.held).toHaveLength(1);
    expect((holding.held[0]?.reason as Error | undefined)?.message).toBe('cancelled by the user');
    expect(finished.status).toBe('cancelled');
    expect(finished.error?.message).toBe('cancelled by the user');
  }, 60_000);

  describe('on Spark', () => {
    let spark: QueryEngine;
    let onSpark: Platform;

    beforeAll(async () => {
      spark = await createSparkEngine({ url: testSparkUrl(), store: platform.store });
      onSpark = { ...platform, engine: spark };
    });

    afterAll(() => spark?.close());

    it('cancels a running query on the cluster', async () => {
      const finished = await run(onSpark, async (id) => {
        await untilRunning(onSpark, id, 200);
        await cancelQuery(onSpark, { user, source: 'test' }, id);
      });
      expect(finished.status).toBe('cancelled');
      expect(finished.error?.message).toBe('cancelled by the user');
      // The session goes on: Spark answers the next statement.
      await spark.ping();
    }, 60_000);

    it('stops a query that runs past the time limit', async () => {
      const limited = { ...onSpark, env: { ...onSpark.env, MEDLAKE_QUERY_TIMEOUT_SECONDS: 1 } };
      const finished = await run(limited);
      expect(finished.status).toBe('failed');
      expect(finished.error?.message).toBe(
        'the query ran longer than its limit of 1 seconds and was stopped',
      );
    }, 60_000);
  });
});
