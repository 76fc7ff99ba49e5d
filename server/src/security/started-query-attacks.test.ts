import type { QueryJobView, ResultPage } from '@medlake/shared';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { userWithToken } from '../../test/api-helpers.ts';
import { catalogBackends } from '../../test/catalog-backends.ts';
import {
  createTestApp,
  createTestPlatform,
  testActor,
  type TestPlatform,
} from '../../test/helper.ts';
import { ingest, prepareDataset, synthea } from '../../test/ingest-helpers.ts';
import { grantsRepository } from '../catalog/grants-repository.ts';
import type { User } from '../catalog/users-repository.ts';
import type { QueryEngine } from '../engines/types.ts';
import { createLogger } from '../logger.ts';
import type { Platform } from '../platform.ts';
import { startQueryWorker, type QueryWorkerOptions } from '../use-cases/queries/query-worker.ts';
import { getQuery, listQueries, waitForQuery } from '../use-cases/queries/read-query.ts';
import { submitQuery } from '../use-cases/queries/submit-query.ts';
import { revokeGrant } from '../use-cases/manage-access.ts';

/**
 * Attacks on a query that starts in the server that took it while the catalog records the job
 * and its audit entry (POST /api/v1/queries?wait=S): its engine runs before that record
 * commits. Each test makes the record late, refused or raced, and checks that the promises of
 * the queued path still hold: nothing of an answer without its audit entry, exactly one final
 * state, the user's waiting limit and the worker's places, and the same disclosure control.
 */

const byCodeAndSex = {
  dataset: 'synthea-observations',
  groupBy: [{ column: 'code' }, { column: 'sex' }],
  measures: [{ fn: 'count' }, { fn: 'patients' }],
};

/** Something a test opens when an event happens, so that what waits on it goes on. */
function gate() {
  let open = () => undefined as void;
  const opened = new Promise<void>((resolve) => (open = resolve));
  return { opened, open };
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/**
 * The platform with each submit's audit entry held back until `until()` settles: a catalog
 * slow to record the job (the audit log's lock taken by other writers, say). `until` must
 * settle on its own in the end: on PGlite every other catalog read waits behind the record.
 */
function withSlowSubmitRecord(on: Platform, until: () => Promise<unknown>): Platform {
  return {
    ...on,
    audit: {
      ...on.audit,
      record: async (event, trx) => {
        if (event.action === 'query.submit') await until();
        return on.audit.record(event, trx);
      },
    },
  };
}

/** The platform's engine with `rows` replaced; the rest (writes, dialect) is the real one. */
function withRows(on: Platform, rows: QueryEngine['rows']): Platform {
  return {
    ...on,
    engine: { ...on.engine, kind: on.engine.kind, dialect: on.engine.dialect, rows },
  };
}

describe.each(catalogBackends())('a query started while its submit is recorded, on %s', (kind) => {
  let platform: TestPlatform;
  let users = 0;

  beforeAll(async () => {
    platform = await createTestPlatform(kind);
    await prepareDataset(platform, 'synthea-observations');
    const { status } = await ingest(platform, { file: synthea('all'), month: '2021-06' });
    expect(status).toBe('published');
  }, 120_000);

  afterAll(() => platform?.dispose());

  /** A new aggregate researcher for each test, so that no test's jobs count against another's limit. */
  async function researcher(): Promise<{ user: User; token: string }> {
    users += 1;
    return userWithToken(platform, `started-${users}@example.org`, {
      grant: { datasetId: 'synthea-observations', level: 'aggregate' },
    });
  }

  async function startWorker(on: Platform, options: Partial<QueryWorkerOptions> = {}) {
    const worker = startQueryWorker(on, { logger: createLogger('silent'), pollMs: 50, ...options });
    await worker.ready;
    return worker;
  }

  const submitHere = (on: Platform, user: User) =>
    submitQuery(on, { user, source: 'test' }, byCodeAndSex, { startHere: true });

  async function submitAudits(id: string): Promise<number> {
    const found = await platform.audit.search(
      { action: 'query.submit', target: `query:${id}` },
      { page: 1, pageSize: 10 },
    );
    return found.total;
  }

  /** How many cells the release ledger holds, of every user. */
  async function releasedCells(): Promise<number> {
    const { n } = await platform.catalog.db
      .selectFrom('released_cells')
      .select((eb) => eb.fn.countAll().as('n'))
      .executeTakeFirstOrThrow();
    return Number(n);
  }

  it('runs a job whose record takes longer than a heartbeat to its end, instead of taking it for lost', async () => {
    const { user } = await researcher();
    // Several heartbeats come and go before the job's row exists, and the engine is done.
    const storedBeforeRecord: string[] = [];
    const slow = withSlowSubmitRecord(platform, async () => {
      await sleep(500);
      storedBeforeRecord.push(...(await platform.store.list('results/')));
    });
    const worker = await startWorker(slow, { heartbeatMs: 20 });
    try {
      const job = await submitHere(slow, user);
      expect(job).toMatchObject({ status: 'running', attempts: 1 });
      const finished = await waitForQuery(slow, user, job.id, 30);
      expect(finished).toMatchObject({ status: 'succeeded', error: null });
      // Nothing of the answer was stored before its audit entry.
      expect(finished.resultKey).toContain(job.id);
      expect(storedBeforeRecord.filter((key) => key.includes(job.id))).toEqual([]);
    } finally {
      await worker.stop();
    }
  }, 60_000);

  it('ends a job whose engine fails before its record commits as failed, after its audit entry, with a plain message', async () => {
    const { user } = await researcher();
    const failed = gate();
    // A figure no job id, user id or time can hold by chance: '4242' alone is in about one
    // random uuid of two thousand, and the job shows two.
    const secret = 'value 4242.75 of patient 5f2c-secret';
    const broken = withSlowSubmitRecord(
      withRows(platform, () => {
        failed.open();
        return Promise.reject(new Error(`the engine fell over at ${secret}`));
      }),
      // The record commits only after the run has failed (or, should the run not get that far
      // before the record, after a while).
      () => Promise.race([failed.opened.then(() => sleep(200)), sleep(3000)]),
    );
    const worker = await startWorker(broken);
    try {
      const job = await submitHere(broken, user);
      expect(await submitAudits(job.id)).toBe(1);
      const finished = await waitForQuery(broken, user, job.id, 10);
      expect(finished.status).toBe('failed');
      expect(finished.error?.message).toBe(
        'the query failed in the engine; the administrator can find the details in the log',
      );
      expect(JSON.stringify(finished)).not.toContain('4242.75');
      expect(JSON.stringify(finished)).not.toContain('5f2c-secret');
    } finally {
      await worker.stop();
    }
  }, 60_000);

  it('puts a job back in the queue when the server stops before its record commits, and audits it once however often it runs', async () => {
    const { user } = await researcher();
    const started = gate();
    const interrupted = gate();
    // An engine that works until it is interrupted.
    const endless = withRows(platform, (_statement, options) => {
      started.open();
      return new Promise((_resolve, reject) => {
        const signal = options?.signal;
        const interrupt = () => {
          interrupted.open();
          reject(signal?.reason as Error);
        };
        if (signal?.aborted) interrupt();
        else signal?.addEventListener('abort', interrupt, { once: true });
      });
    });
    const stopping = withSlowSubmitRecord(endless, () =>
      Promise.race([interrupted.opened.then(() => sleep(200)), sleep(5000)]),
    );
    const first = await startWorker(stopping);
    const submitted = submitHere(stopping, user);
    await Promise.race([started.opened, sleep(5000)]);
    await first.stop();
    const job = await submitted;
    expect(await getQuery(platform, user, job.id)).toMatchObject({
      status: 'queued',
      error: null,
    });

    const second = await startWorker(platform);
    try {
      const finished = await waitForQuery(platform, user, job.id, 30);
      expect(finished).toMatchObject({ status: 'succeeded', attempts: 2 });
      expect(await submitAudits(job.id)).toBe(1);
    } finally {
      await second.stop();
    }
  }, 60_000);

  it('refuses a submit whose audit entry cannot be written, and keeps nothing of its run', async () => {
    const { user } = await researcher();
    const refusing: Platform = {
      ...platform,
      audit: {
        ...platform.audit,
        record: (event, trx) =>
          event.action === 'query.submit'
            ? Promise.reject(new Error('the audit log refused the entry'))
            : platform.audit.record(event, trx),
      },
    };
    const resultsBefore = (await platform.store.list('results/')).sort();
    const cellsBefore = await releasedCells();
    const worker = await startWorker(refusing);
    try {
      await expect(submitHere(refusing, user)).rejects.toThrow('the audit log refused the entry');
    } finally {
      // Waits for the refused run to end.
      await worker.stop();
    }
    expect((await listQueries(platform, user, { page: 1, pageSize: 10 })).total).toBe(0);
    expect((await platform.store.list('results/')).sort()).toEqual(resultsBefore);
    // Nor did the release ledger record a cell of an answer nobody may see.
    expect(await releasedCells()).toBe(cellsBefore);
  }, 60_000);

  it.each([
    ['started here', true],
    ['queued', false],
  ])(
    'ends a job %s whose grant is revoked while its engine runs, with nothing of its answer kept',
    async (_path, startHere) => {
      const { user } = await researcher();
      const grants = await grantsRepository(platform.catalog.db).active(
        user.id,
        'synthea-observations',
        new Date(),
      );
      const running = gate();
      const revoked = gate();
      // The real engine, once the grant is gone.
      const held = withRows(platform, async (statement, options) => {
        running.open();
        await revoked.opened;
        return platform.engine.rows(statement, options);
      });
      const cellsBefore = await releasedCells();
      const worker = await startWorker(held);
      try {
        const job = await submitQuery(held, { user, source: 'test' }, byCodeAndSex, {
          startHere,
        });
        await running.opened;
        await revokeGrant(platform, testActor, grants[0]!.id);
        // Longer than a check of the user's access stands for: the run must check again.
        await sleep(1100);
        revoked.open();
        const finished = await waitForQuery(held, user, job.id, 30);
        expect(finished).toMatchObject({ status: 'failed', resultKey: null, summary: null });
        expect(finished.error?.message).toMatch(/revoked/);
        expect(
          (await platform.store.list('results/')).filter((key) => key.includes(job.id)),
        ).toEqual([]);
        expect(await releasedCells()).toBe(cellsBefore);
      } finally {
        await worker.stop();
      }
    },
    60_000,
  );

  it('holds the worker’s places under a burst of submits that wait, and runs each accepted job once', async () => {
    const { user } = await researcher();
    const release = gate();
    // The engine holds every run until the burst is over, so that no place comes free meanwhile.
    const held = withRows(
      { ...platform, env: { ...platform.env, MEDLAKE_QUERY_CONCURRENCY: 1 } },
      async (statement, options) => {
        await release.opened;
        return platform.engine.rows(statement, options);
      },
    );
    const worker = await startWorker(held);
    try {
      const burst = await Promise.all(Array.from({ length: 6 }, () => submitHere(held, user)));
      const listed = await listQueries(platform, user, { page: 1, pageSize: 100 });
      expect(listed.jobs.filter((job) => ['queued', 'running'].includes(job.status))).toHaveLength(
        6,
      );
      // One place: the job a submit started here, or the one the worker claimed.
      expect(listed.jobs.filter((job) => job.status === 'running').length).toBeLessThanOrEqual(1);
      release.open();
      for (const job of burst) {
        expect(await waitForQuery(held, user, job.id, 30)).toMatchObject({
          status: 'succeeded',
          attempts: 1,
        });
        expect(await submitAudits(job.id)).toBe(1);
      }
    } finally {
      release.open();
      await worker.stop();
    }
  }, 60_000);

  it('holds the user’s waiting limit under a burst of submits, started here or queued', async () => {
    const { user } = await researcher();
    const release = gate();
    const held = withRows(
      {
        ...platform,
        env: { ...platform.env, MEDLAKE_QUERY_QUEUE_PER_USER: 2, MEDLAKE_QUERY_CONCURRENCY: 1 },
      },
      async (statement, options) => {
        await release.opened;
        return platform.engine.rows(statement, options);
      },
    );
    const worker = await startWorker(held);
    try {
      const burst = await Promise.allSettled(
        Array.from({ length: 8 }, () => submitHere(held, user)),
      );
      const accepted = burst.flatMap((outcome) =>
        outcome.status === 'fulfilled' ? [outcome.value] : [],
      );
      const refused = burst.flatMap((outcome) =>
        outcome.status === 'rejected' ? [(outcome.reason as { code?: string }).code] : [],
      );
      expect(accepted).toHaveLength(2);
      expect(refused).toEqual(Array(6).fill('queue_full'));
      expect((await listQueries(platform, user, { page: 1, pageSize: 100 })).total).toBe(2);
      release.open();
      for (const job of accepted) {
        expect((await waitForQuery(held, user, job.id, 30)).status).toBe('succeeded');
      }
    } finally {
      release.open();
      await worker.stop();
    }
  }, 60_000);

  it('gives an aggregate user the same disclosure-controlled answer through ?wait as through submit-then-poll', async () => {
    const waiter = await researcher();
    const poller = await researcher();
    const worker = await startWorker(platform);
    const app = await createTestApp(platform);
    const call = (token: string, method: 'GET' | 'POST', url: string, payload?: object) =>
      app.inject({
        method,
        url,
        headers: { authorization: `Bearer ${token}` },
        ...(payload ? { payload } : {}),
      });
    try {
      const waited = await call(waiter.token, 'POST', '/api/v1/queries?wait=30', byCodeAndSex);
      expect(waited.statusCode, waited.body).toBe(200);
      const answer = waited.json<QueryJobView>();

      const submitted = await call(poller.token, 'POST', '/api/v1/queries', byCodeAndSex);
      expect(submitted.statusCode).toBe(202);
      const id = submitted.json<QueryJobView>().id;
      const polled = (
        await call(poller.token, 'GET', `/api/v1/queries/${id}?wait=30`)
      ).json<QueryJobView>();
      expect(polled.status).toBe('succeeded');
      const page = await call(poller.token, 'GET', `/api/v1/queries/${id}/results?pageSize=100`);
      expect(page.statusCode).toBe(200);

      // The privacy step held something back, so that the comparison covers what it hides.
      expect(answer.summary?.rowCount).toBeGreaterThan(0);
      expect(answer.summary?.withheldGroups).toBeGreaterThan(0);
      expect(polled.summary).toEqual(answer.summary);
      expect(page.json<ResultPage>()).toEqual(answer.firstPage);
    } finally {
      await app.close();
      await worker.stop();
    }
  }, 60_000);
});
