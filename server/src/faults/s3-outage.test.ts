import { readFile } from 'node:fs/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startCuttableProxy, type CuttableProxy } from '../../test/cuttable-proxy.ts';
import { createTestApp, createTestPlatform, type TestPlatform } from '../../test/helper.ts';
import {
  ingest,
  publishSyntheaDecember,
  stewardWithToken,
  synthea,
} from '../../test/ingest-helpers.ts';
import { researcherWithAccess, runQuery } from '../../test/query-helpers.ts';
import { testS3Url } from '../../test/s3.ts';
import { publishedObjects } from '../../test/published-objects.ts';
import type { App } from '../app.ts';
import { jobsRepository } from '../catalog/jobs-repository.ts';
import { releasesRepository } from '../catalog/releases-repository.ts';
import type { User } from '../catalog/users-repository.ts';
import { checkHealth } from '../use-cases/check-health.ts';
import { cleanInterruptedIngests } from '../use-cases/clean-interrupted-ingests.ts';
import { ingestJobKind, ingestUpload } from '../use-cases/ingest-upload.ts';

const unreachable = /The S3 store at http:\/\/127\.0\.0\.1:\d+ cannot be reached/;

/**
 * The S3 server going away in the middle of a query, an ingest and an upload in parts, and
 * coming back. The deployment reaches the real S3 server through a relay the test can cut, so
 * the server the other tests share keeps running.
 */
describe('the S3 server going away', () => {
  let proxy: CuttableProxy;
  let platform: TestPlatform;
  let researcher: User;

  beforeAll(async () => {
    const s3 = testS3Url();
    proxy = await startCuttableProxy(`${s3.protocol}//${s3.host}`);
    platform = await createTestPlatform(
      'pglite',
      { MEDLAKE_S3_ENDPOINT: proxy.url },
      { storage: 's3' },
    );
    await publishSyntheaDecember(platform);
    researcher = await researcherWithAccess(
      platform,
      'researcher@example.org',
      'synthea-observations',
      'aggregate',
    );
  }, 120_000);

  afterAll(async () => {
    proxy?.restore();
    await platform?.dispose();
    await proxy?.close();
  });

  // One total: every group of one month by sex holds fewer than 11 patients and would be left
  // out, and the test needs a row to come back.
  const spec = {
    dataset: 'synthea-observations',
    measures: [{ fn: 'patients' }, { fn: 'count' }],
  };

  it('fails a query that is reading the lake with a plain message, and the same query runs once S3 is back', async () => {
    proxy.cutOnNextRequest();
    const failed = await runQuery(platform, researcher, spec);
    expect(failed.job.status).toBe('failed');
    expect(failed.job.error?.message).toMatch(/S3 store .* cannot be reached/);
    expect((await checkHealth(platform)).components.storage).toMatchObject({
      status: 'error',
      message: expect.stringMatching(unreachable),
    });

    proxy.restore();
    const again = await runQuery(platform, researcher, spec);
    expect(again.job.status).toBe('succeeded');
    expect(again.rows.length).toBeGreaterThan(0);
    expect((await checkHealth(platform)).status).toBe('ok');
  });

  it('fails an ingest that loses S3 while it reads the upload, and the next start removes what it left in the bucket', async () => {
    const attempt = ingestUpload(platform, {
      actor: { userId: null, name: 'test', source: 'test' },
      datasetId: 'synthea-observations',
      hospitalId: 'synthea',
      month: '2021-03',
      fileName: 'hospital-export-2021-03.csv',
      source: { file: synthea('2021-03') },
      // S3 goes away once the upload is in the landing zone and the engine reads it.
      onProgress: (progress) => {
        if (progress.phase === 'reading') proxy.cutOnNextRequest();
      },
    });
    await expect(attempt).rejects.toThrow(unreachable);
    proxy.restore();

    const jobs = await jobsRepository(platform.catalog.db).list(ingestJobKind, null, {
      page: 1,
      pageSize: 1,
    });
    expect(jobs.jobs[0]).toMatchObject({
      status: 'failed',
      error: { message: expect.stringMatching(unreachable) },
    });
    // The raw upload could not be removed while S3 was away; the next start removes it.
    expect(await platform.store.list('landing/')).toHaveLength(1);
    await cleanInterruptedIngests(platform);
    expect(await platform.store.list('landing/')).toEqual([]);
    const releases = await releasesRepository(platform.catalog.db).list();
    expect(releases.map((release) => release.month)).toEqual(['2020-12']);
    expect((await platform.store.list('lake/')).sort()).toEqual(
      await publishedObjects(platform.catalog.db, releases),
    );

    const retried = await ingest(platform, { file: synthea('2021-03'), month: '2021-03' });
    expect(retried.status).toBe('published');
  });

  describe('an upload in parts', () => {
    let app: App;
    let token: string;

    beforeAll(async () => {
      app = await createTestApp(platform);
      token = await stewardWithToken(platform, 'steward@example.org', 'synthea');
    });

    afterAll(async () => {
      await app?.close();
    });

    const call = (method: 'GET' | 'POST', url: string, payload?: object) =>
      app.inject({
        method,
        url,
        headers: { authorization: `Bearer ${token}` },
        ...(payload ? { payload } : {}),
      });

    it('answers 503 while S3 is away, keeps the parts that arrived, and completes once it is back', async () => {
      const file = await readFile(synthea('all'));
      const partBytes = 5 * 1024 * 1024;
      const started = await call('POST', '/api/v1/upload-sessions', {
        dataset: 'synthea-observations',
        hospital: 'synthea',
        month: '2021-06',
        fileName: 'hospital-export-all.csv',
        bytes: file.length,
        partBytes,
      });
      expect(started.statusCode).toBe(201);
      const session = started.json() as { id: string; parts: number };
      expect(session.parts).toBe(2);
      const send = async (partNumber: number) => {
        const target = (
          await call('GET', `/api/v1/upload-sessions/${session.id}/parts/${partNumber}/target`)
        ).json() as { url: string };
        return fetch(target.url, {
          method: 'PUT',
          body: file.subarray((partNumber - 1) * partBytes, partNumber * partBytes),
        });
      };
      expect((await send(1)).status).toBe(200);

      proxy.cut();
      await expect(send(2)).rejects.toThrow();
      const whileAway = await call('GET', `/api/v1/upload-sessions/${session.id}`);
      expect(whileAway.statusCode).toBe(503);
      expect(whileAway.json().error.message).toMatch(unreachable);
      const completeWhileAway = await call(
        'POST',
        `/api/v1/upload-sessions/${session.id}/complete`,
      );
      expect(completeWhileAway.statusCode).toBe(503);

      proxy.restore();
      const resumed = (await call('GET', `/api/v1/upload-sessions/${session.id}`)).json() as {
        status: string;
        arrived: number[];
      };
      expect(resumed).toMatchObject({ status: 'open', arrived: [1] });
      expect((await send(2)).status).toBe(200);
      const completed = await call('POST', `/api/v1/upload-sessions/${session.id}/complete`);
      expect(completed.statusCode, completed.body).toBe(201);
      expect(completed.json()).toMatchObject({ status: 'published' });
    });
  });
});
