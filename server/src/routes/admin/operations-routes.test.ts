import type { HospitalOverview, QueryJobView, RunningWork, StorageUsage } from '@medlake/shared';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { callWithTokens, tokensWithRoles } from '../../../test/api-helpers.ts';
import {
  createTestApp,
  createTestPlatform,
  testActor,
  type TestPlatform,
} from '../../../test/helper.ts';
import { ingest, prepareDataset, synthea } from '../../../test/ingest-helpers.ts';
import type { App } from '../../app.ts';
import { createLogger } from '../../logger.ts';
import { assignSteward } from '../../use-cases/accounts/manage-users.ts';
import { startQueryWorker } from '../../use-cases/queries/query-worker.ts';
import { grantDatasetAccess } from '../../use-cases/manage-access.ts';

describe('operations: hospitals, work under way, storage', () => {
  let platform: TestPlatform;
  let app: App;
  const tokens: Record<string, string> = {};

  const call = callWithTokens(() => app, tokens);

  beforeAll(async () => {
    platform = await createTestPlatform();
    await prepareDataset(platform, 'synthea-observations', ['synthea', 'quiet']);
    await ingest(platform, { file: synthea('2020-12'), month: '2020-12' });
    Object.assign(
      tokens,
      await tokensWithRoles(platform, { admin: 'admin', stu: 'steward', rae: 'researcher' }),
    );
    await assignSteward(platform, testActor, {
      email: 'stu@example.org',
      hospitalId: 'synthea',
      assigned: true,
    });
    await grantDatasetAccess(platform, testActor, {
      email: 'rae@example.org',
      datasetId: 'synthea-observations',
      level: 'aggregate',
    });
    app = await createTestApp(platform);
  });

  afterAll(async () => {
    await app.close();
    await platform.dispose();
  });

  it('lists hospitals with their stewards and deliveries, and adds one', async () => {
    const page = (await call('admin', 'GET', '/api/v1/admin/hospitals')).json<{
      total: number;
      hospitals: HospitalOverview[];
    }>();
    expect(page.total).toBe(2);
    expect(page.hospitals).toEqual([
      expect.objectContaining({ id: 'quiet', stewards: [], currentReleases: 0, latestMonth: null }),
      expect.objectContaining({
        id: 'synthea',
        stewards: [expect.objectContaining({ email: 'stu@example.org' })],
        currentReleases: 1,
        latestMonth: '2020-12',
      }),
    ]);

    const added = await call('admin', 'POST', '/api/v1/admin/hospitals', {
      id: 'north',
      name: 'North General',
    });
    expect(added.statusCode).toBe(201);
    expect(
      (await call('admin', 'GET', '/api/v1/admin/hospitals?pageSize=1&page=2')).json<{
        hospitals: HospitalOverview[];
      }>().hospitals[0]?.id,
    ).toBe('quiet');
    const bad = await call('admin', 'POST', '/api/v1/admin/hospitals', { id: 'North!', name: 'x' });
    expect(bad.statusCode).toBe(400);
    const again = await call('admin', 'POST', '/api/v1/admin/hospitals', {
      id: 'north',
      name: 'x',
    });
    expect(again.statusCode).toBe(409);
    const audited = await platform.audit.search(
      { action: 'hospital.create', target: 'hospital:north' },
      { page: 1, pageSize: 5 },
    );
    expect(audited.total).toBe(1);
  });

  it("shows queued queries with who ran them, and lets an admin stop anyone's", async () => {
    // No worker runs here: the query stays queued.
    const queued = (
      await call('rae', 'POST', '/api/v1/queries', {
        dataset: 'synthea-observations',
        measures: [{ fn: 'patients' }],
      })
    ).json<QueryJobView>();
    const work = (await call('admin', 'GET', '/api/v1/admin/jobs')).json<RunningWork>();
    expect(work.total).toBe(1);
    expect(work.queries[0]).toMatchObject({
      id: queued.id,
      status: 'queued',
      user: 'rae@example.org',
      accessLevel: 'aggregate',
    });
    expect(work.ingests).toEqual([]);

    expect((await call('rae', 'DELETE', `/api/v1/admin/queries/${queued.id}`)).statusCode).toBe(
      403,
    );
    const stopped = await call('admin', 'DELETE', `/api/v1/admin/queries/${queued.id}`);
    expect(stopped.json<QueryJobView>().status).toBe('cancelled');
    expect((await call('admin', 'GET', '/api/v1/admin/jobs')).json<RunningWork>().total).toBe(0);
    const entry = (
      await platform.audit.search(
        { action: 'query.cancel', target: `query:${queued.id}` },
        { page: 1, pageSize: 5 },
      )
    ).entries[0];
    expect(entry).toMatchObject({ actor: 'admin@example.org' });
    expect(entry?.details.owner).toBeDefined();
  });

  it('stops a finished query as a no-op, without showing an administrator what it found', async () => {
    const worker = startQueryWorker(platform, { logger: createLogger('silent'), pollMs: 50 });
    try {
      const answered = await call('rae', 'POST', '/api/v1/queries?wait=30', {
        dataset: 'synthea-observations',
        measures: [{ fn: 'patients' }],
      });
      const own = answered.json<QueryJobView>();
      expect(own.status).toBe('succeeded');
      expect(own.summary?.keyPoints.length).toBeGreaterThan(0);

      const stopped = await call('admin', 'DELETE', `/api/v1/admin/queries/${own.id}`);
      expect(stopped.statusCode).toBe(200);
      expect(stopped.json<QueryJobView>()).toMatchObject({ status: 'succeeded', summary: null });
      for (const point of own.summary!.keyPoints) {
        expect(stopped.body).not.toContain(JSON.stringify(point));
      }
    } finally {
      await worker.stop();
    }
  });

  it('measures the storage zones and the lake by dataset', async () => {
    const usage = (await call('admin', 'GET', '/api/v1/admin/storage')).json<StorageUsage>();
    const lake = usage.zones.find((zone) => zone.zone === 'lake');
    expect(usage.storage).toBe('local');
    expect(lake?.objects).toBeGreaterThan(0);
    expect(lake?.bytes).toBeGreaterThan(0);
    expect(usage.zones.map((zone) => zone.zone)).toEqual(['landing', 'lake', 'results']);
    const dataset = usage.datasets.find((item) => item.id === 'synthea-observations');
    expect(dataset?.currentReleases).toBe(1);
    expect(dataset?.rows).toBeGreaterThan(0);
    expect(dataset?.sourceBytes).toBeGreaterThan(0);
    expect((await call('stu', 'GET', '/api/v1/admin/storage')).statusCode).toBe(403);
  });
});
