import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestApp, createTestPlatform, type TestPlatform } from '../../../test/helper.ts';
import { listFiles, publishSyntheaDecember } from '../../../test/ingest-helpers.ts';
import { researcherWithAccess, runQuery } from '../../../test/query-helpers.ts';
import { s3DeploymentEnv, testBucket } from '../../../test/s3.ts';
import { createDuckDbEngine } from '../../engines/duckdb/duckdb-engine.ts';
import { UnavailableError } from '../../errors.ts';
import { checkHealth } from '../../use-cases/check-health.ts';
import { exportQueryResult } from '../../use-cases/queries/export-query.ts';
import { createS3ObjectStore } from './s3-object-store.ts';

/** A whole deployment with landing, lake and results in a bucket, on the DuckDB engine. */
describe('a deployment on S3', () => {
  let platform: TestPlatform;

  beforeAll(async () => {
    platform = await createTestPlatform('pglite', {}, { storage: 's3' });
    await publishSyntheaDecember(platform);
  }, 120_000);

  afterAll(async () => {
    await platform?.dispose();
  });

  it('keeps the lake in the bucket and nothing of it on local disk', async () => {
    const health = await checkHealth(platform);
    expect(health.status).toBe('ok');
    expect(health.components.storage).toMatchObject({ kind: 's3', status: 'ok' });
    expect(await listFiles(platform.layout.objects)).toEqual([]);
    const lake = await platform.store.list('lake/');
    expect(lake.length).toBeGreaterThan(0);
    expect(platform.store.locate(lake[0]!)).toMatch(/^s3:\/\//);
    // The landed upload was deleted from the bucket once published.
    expect(await platform.store.list('landing/')).toEqual([]);
  });

  it('hands out the server’s link, which redirects each use to a fresh presigned URL of 5 minutes', async () => {
    const user = await researcherWithAccess(
      platform,
      'agg@example.org',
      'synthea-observations',
      'aggregate',
    );
    const { job } = await runQuery(platform, user, {
      dataset: 'synthea-observations',
      groupBy: [{ column: 'sex' }],
      measures: [{ fn: 'patients' }],
    });
    expect(job.status).toBe('succeeded');
    const link = await exportQueryResult(platform, { user, source: 'test' }, job.id, 'csv');
    // The server's own link: each use is checked against the owner's access then.
    expect(link.url).toMatch(/^\/api\/v1\/downloads\//);

    const app = await createTestApp(platform);
    try {
      const used = await app.inject({ method: 'GET', url: link.url! });
      expect(used.statusCode).toBe(303);
      const endpoint = new URL(platform.env.MEDLAKE_S3_ENDPOINT!);
      const url = new URL(used.headers.location as string);
      expect(url.host).toBe(endpoint.host);
      expect(url.searchParams.get('X-Amz-Expires')).toBe('300');
      const response = await fetch(url);
      expect(response.status).toBe(200);
      expect(response.headers.get('content-disposition')).toBe(
        `attachment; filename="${link.fileName}"`,
      );
      const [header, ...lines] = (await response.text()).trimEnd().split('\n');
      expect(header).toBe('sex,patients,suppressed');
      expect(lines).toHaveLength(job.summary?.rowCount ?? -1);
    } finally {
      await app.close();
    }

    const audited = await platform.audit.search({}, { page: 1, pageSize: 20 });
    const forExport = audited.entries.filter((entry) => entry.target === `export:${link.exportId}`);
    expect(forExport.map((entry) => [entry.action, entry.actorId]).sort()).toEqual([
      // Used without a sign-in: anonymous, with the link.
      ['download', null],
      ['export.create', user.id],
    ]);
  });
});

describe('the DuckDB engine on S3', () => {
  let scratch: string;

  beforeAll(async () => {
    scratch = await mkdtemp(path.join(tmpdir(), 'medlake-duckdb-s3-'));
  });

  afterAll(async () => {
    await rm(scratch, { recursive: true, force: true });
  });

  it('says clearly that httpfs is missing, and how to install it', async () => {
    const bucket = await s3DeploymentEnv();
    try {
      const opened = createTestPlatform('pglite', {
        ...bucket.env,
        MEDLAKE_DUCKDB_EXTENSIONS: path.join(scratch, 'no-extensions-here'),
      });
      await expect(opened).rejects.toThrow(UnavailableError);
      await expect(opened).rejects.toThrow(
        /httpfs extension is not installed.*npm run install:httpfs/,
      );
    } finally {
      await bucket.drop();
    }
  });

  it('puts fresh credentials in before the ones it holds expire', async () => {
    const bucket = await testBucket();
    const store = createS3ObjectStore(bucket.settings);
    const good = bucket.settings.credentials!;
    // First credentials that are about to expire and no longer work (as a role's would), then
    // the renewed ones.
    const issued = [
      { ...good, secretAccessKey: 'expired-secret', expiration: new Date(Date.now() + 60_000) },
      { ...good, expiration: new Date(Date.now() + 3_600_000) },
    ];
    let calls = 0;
    const engine = await createDuckDbEngine({
      allowedDirectories: [`${store.locate('lake')}/`],
      tempDirectory: path.join(scratch, 'tmp'),
      s3: { ...store.engineAccess!, credentials: async () => issued[Math.min(calls++, 1)]! },
      extensionDirectory: process.env.MEDLAKE_TEST_DUCKDB_EXTENSIONS!,
    });
    try {
      await engine.writeFile(
        { sql: 'SELECT range AS n FROM range(10)', params: [] },
        store.locate('lake/t/part-0.parquet'),
        'parquet',
      );
      const [row] = await engine.rows({
        sql: `SELECT sum(n) AS total FROM read_parquet('${store.locate('lake/t/part-0.parquet')}')`,
        params: [],
      });
      expect(row).toEqual({ total: '45' });
      expect(calls).toBe(2);
    } finally {
      await engine.close();
      await bucket.drop();
    }
  });
});
