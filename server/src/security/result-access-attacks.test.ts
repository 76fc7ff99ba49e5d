import type { QueryJobView, ResultPage } from '@medlake/shared';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { userWithToken } from '../../test/api-helpers.ts';
import {
  createTestApp,
  createTestPlatform,
  testActor,
  type TestPlatform,
} from '../../test/helper.ts';
import { ingest, prepareDataset, synthea } from '../../test/ingest-helpers.ts';
import type { App } from '../app.ts';
import type { Platform } from '../platform.ts';
import { grantsRepository } from '../catalog/grants-repository.ts';
import { createLogger } from '../logger.ts';
import { forgetResultRows } from '../query/result-cache.ts';
import { grantDatasetAccess, revokeGrant } from '../use-cases/manage-access.ts';
import { startQueryWorker, type QueryWorker } from '../use-cases/queries/query-worker.ts';

/**
 * Attacks on the pages of a result made under access the user has since lost part of: row
 * access taken back (an aggregate grant left), or a hospital taken out of the grant. The job
 * stays the user's, and a grant on the dataset is still in force; the pages, from memory or
 * from the stored file, must stop all the same, as its key points and its exports do.
 */

const dataset = 'synthea-observations';

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/**
 * The platform with the writing of an aggregate result held while `hold` is set: the run has
 * checked the user's access for the last time, and its answer is about to be stored.
 */
function withHeldWrites(on: Platform, hold: { until?: Promise<void>; reached?: () => void }) {
  const engine = on.engine;
  return {
    ...on,
    engine: {
      ...engine,
      kind: engine.kind,
      dialect: engine.dialect,
      writeRowsAsParquet: async (...args: Parameters<typeof engine.writeRowsAsParquet>) => {
        hold.reached?.();
        await hold.until;
        return engine.writeRowsAsParquet(...args);
      },
    },
  } satisfies Platform;
}

describe('the pages of a result made under access since narrowed', () => {
  let platform: TestPlatform;
  let app: App;
  const hold: { until?: Promise<void>; reached?: () => void } = {};
  let worker: QueryWorker | undefined;
  const tokens: Record<string, string> = {};

  const call = (user: string, method: 'GET' | 'POST', url: string, payload?: object) =>
    app.inject({
      method,
      url,
      headers: { authorization: `Bearer ${tokens[user]}` },
      ...(payload ? { payload } : {}),
    });

  async function finished(user: string, spec: object): Promise<QueryJobView> {
    const submitted = await call(user, 'POST', '/api/v1/queries', spec);
    expect(submitted.statusCode).toBe(202);
    const id = submitted.json<QueryJobView>().id;
    const job = (await call(user, 'GET', `/api/v1/queries/${id}?wait=20`)).json<QueryJobView>();
    expect(job.status).toBe('succeeded');
    return job;
  }

  /** Revokes the user's grant in force and gives them another as `next` says. */
  async function replaceGrant(
    email: string,
    next: { level: 'row' | 'aggregate'; hospitals?: string[] },
  ): Promise<void> {
    const grants = grantsRepository(platform.catalog.db);
    const user = await platform.catalog.db
      .selectFrom('users')
      .select('id')
      .where('email', '=', email)
      .executeTakeFirstOrThrow();
    for (const grant of await grants.active(user.id, dataset, new Date())) {
      await revokeGrant(platform, testActor, grant.id);
    }
    await grantDatasetAccess(platform, testActor, { email, datasetId: dataset, ...next });
  }

  beforeAll(async () => {
    // Every result as a file: the attack below holds its write (a small result stored in the
    // catalog has no write to hold; the waited answer's check after the job's end is the same).
    platform = await createTestPlatform('pglite', { MEDLAKE_RESULT_ROWS_IN_CATALOG: '0' });
    await prepareDataset(platform, dataset, ['synthea', 'evil']);
    await ingest(platform, { file: synthea('all'), month: '2021-06' });
    await ingest(platform, { file: synthea('all'), month: '2021-06', hospital: 'evil' });
    tokens.row = (
      await userWithToken(platform, 'row@example.org', {
        grant: { datasetId: dataset, level: 'row' },
      })
    ).token;
    tokens.agg = (await userWithToken(platform, 'agg@example.org')).token;
    await grantDatasetAccess(platform, testActor, {
      email: 'agg@example.org',
      datasetId: dataset,
      level: 'aggregate',
      hospitals: ['synthea', 'evil'],
    });
    const held = withHeldWrites(platform, hold);
    worker = startQueryWorker(held, { logger: createLogger('silent'), pollMs: 50 });
    app = await createTestApp(held);
  }, 120_000);

  afterAll(async () => {
    await app.close();
    await worker?.stop();
    await platform.dispose();
  });

  it('stops the pages of a row-level result once row access is taken back', async () => {
    const job = await finished('row', {
      dataset,
      select: ['patient', 'code', 'value'],
      where: { column: 'code', op: 'eq', value: '8302-2' },
      limit: 3,
    });
    const before = await call('row', 'GET', `/api/v1/queries/${job.id}/results`);
    expect(before.json<ResultPage>().rows).toHaveLength(3);

    await replaceGrant('row@example.org', { level: 'aggregate' });
    // The user may still query the dataset in aggregate, but the rows are no longer theirs.
    const page = await call('row', 'GET', `/api/v1/queries/${job.id}/results`);
    expect(page.statusCode).toBe(403);
    expect(page.body).not.toContain('p_');
    const shown = (await call('row', 'GET', `/api/v1/queries/${job.id}`)).json<QueryJobView>();
    expect(shown.summary).toBeNull();
  });

  it('stops the pages of a result that read a hospital taken out of the grant', async () => {
    const job = await finished('agg', {
      dataset,
      groupBy: [{ column: 'sex' }],
      measures: [{ fn: 'count' }, { fn: 'patients' }],
    });
    expect(job.summary?.releases.hospitals).toEqual(expect.arrayContaining(['synthea', 'evil']));
    expect((await call('agg', 'GET', `/api/v1/queries/${job.id}/results`)).statusCode).toBe(200);

    await replaceGrant('agg@example.org', { level: 'aggregate', hospitals: ['synthea'] });
    // From memory, then from the stored file.
    expect((await call('agg', 'GET', `/api/v1/queries/${job.id}/results`)).statusCode).toBe(403);
    forgetResultRows(job.id);
    expect((await call('agg', 'GET', `/api/v1/queries/${job.id}/results`)).statusCode).toBe(403);
  });

  it('answers a submit that waited with nothing of a result whose grant was revoked meanwhile', async () => {
    tokens.late = (
      await userWithToken(platform, 'late@example.org', {
        grant: { datasetId: dataset, level: 'aggregate' },
      })
    ).token;
    let reached!: () => void;
    const writing = new Promise<void>((resolve) => (reached = resolve));
    let letGo!: () => void;
    hold.until = new Promise<void>((resolve) => (letGo = resolve));
    hold.reached = reached;
    try {
      const answer = call('late', 'POST', '/api/v1/queries?wait=20', {
        dataset,
        groupBy: [{ column: 'code' }],
        measures: [{ fn: 'count' }, { fn: 'patients' }],
      });
      // The run has passed its last check of the grant; the grant is revoked, and a moment
      // later (past what a check stands for) the answer is stored and the job ends.
      await writing;
      const user = await platform.catalog.db
        .selectFrom('users')
        .select('id')
        .where('email', '=', 'late@example.org')
        .executeTakeFirstOrThrow();
      const grants = await grantsRepository(platform.catalog.db).active(
        user.id,
        dataset,
        new Date(),
      );
      for (const grant of grants) await revokeGrant(platform, testActor, grant.id);
      await sleep(1100);
      letGo();
      const response = await answer;
      const job = response.json<QueryJobView & { firstPage?: ResultPage }>();
      expect(job.status).toBe('succeeded');
      // As GET /queries/:id and its pages would answer now: no key points, no rows.
      expect(job.summary).toBeNull();
      expect(job.firstPage).toBeUndefined();
      expect((await call('late', 'GET', `/api/v1/queries/${job.id}/results`)).statusCode).toBe(403);
    } finally {
      hold.until = undefined;
      hold.reached = undefined;
    }
  });
});
