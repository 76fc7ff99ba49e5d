import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { catalogBackends } from '../../test/catalog-backends.ts';
import { createTestPlatform, type TestPlatform } from '../../test/helper.ts';
import { jobsRepository } from '../catalog/jobs-repository.ts';
import { cleanInterruptedIngests } from './clean-interrupted-ingests.ts';
import { ingestLeaseMs } from './ingest-lease.ts';
import { ingestJobKind } from './ingest-upload.ts';

describe.each(catalogBackends())('ingest leases (catalog on %s)', (kind) => {
  let platform: TestPlatform;

  beforeEach(async () => {
    platform = await createTestPlatform(kind);
  });

  afterEach(async () => {
    await platform.dispose();
  });

  /** A running ingest whose last beat was `ageMs` ago. */
  async function runningIngest(id: string, ageMs: number): Promise<void> {
    const jobs = jobsRepository(platform.catalog.db);
    await jobs.start({
      id,
      kind: ingestJobKind,
      params: {
        datasetId: 'd',
        hospitalId: 'h',
        month: '2024-01',
        fileName: 'x.csv',
        releaseId: crypto.randomUUID(),
      },
    });
    await platform.catalog.db
      .updateTable('jobs')
      .set({ heartbeat_at: new Date(Date.now() - ageMs) })
      .where('id', '=', id)
      .execute();
  }

  it(
    kind === 'pglite'
      ? 'fails every running ingest: the embedded catalog has no other live process'
      : 'fails only the ingests whose lease expired: other servers run theirs',
    async () => {
      const live = crypto.randomUUID();
      const dead = crypto.randomUUID();
      await runningIngest(live, 1_000);
      await runningIngest(dead, ingestLeaseMs + 5_000);

      const failed = await cleanInterruptedIngests(platform);
      const jobs = jobsRepository(platform.catalog.db);
      expect((await jobs.get(dead))?.status).toBe('failed');
      expect((await jobs.get(live))?.status).toBe(kind === 'pglite' ? 'failed' : 'running');
      expect(failed).toBe(kind === 'pglite' ? 2 : 1);
    },
  );

  it('keeps a beating ingest alive, and refuses to finish one that was failed meanwhile', async () => {
    const id = crypto.randomUUID();
    await runningIngest(id, ingestLeaseMs + 5_000);
    const jobs = jobsRepository(platform.catalog.db);
    await jobs.heartbeat(id);
    expect(await jobs.listExpired(ingestJobKind, new Date(Date.now() - ingestLeaseMs))).toEqual([]);

    expect(await jobs.finish(id, { status: 'failed', error: { message: 'reaped' } })).toBe(true);
    // Its own server, come back, cannot turn it into a success.
    expect(await jobs.finish(id, { status: 'succeeded', result: {} })).toBe(false);
    expect((await jobs.get(id))?.status).toBe('failed');
  });
});
