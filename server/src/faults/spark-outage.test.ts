import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startCuttableProxy, type CuttableProxy } from '../../test/cuttable-proxy.ts';
import { createTestPlatform, type TestPlatform } from '../../test/helper.ts';
import { publishSyntheaDecember } from '../../test/ingest-helpers.ts';
import { researcherWithAccess, runQuery } from '../../test/query-helpers.ts';
import { testSparkUrl } from '../../test/spark.ts';
import type { User } from '../catalog/users-repository.ts';
import { checkHealth } from '../use-cases/check-health.ts';

/**
 * The Spark Connect server going away while a query runs on it, and coming back. The platform
 * reaches the real test server through a relay the test cuts, so the server itself, which other
 * tests share, keeps running.
 */
describe('the Spark Connect server going away mid-query', () => {
  let proxy: CuttableProxy;
  let platform: TestPlatform;
  let researcher: User;

  beforeAll(async () => {
    const target = new URL(testSparkUrl().replace(/^sc:/, 'http:'));
    proxy = await startCuttableProxy(`http://${target.host}`);
    platform = await createTestPlatform('pglite', {
      MEDLAKE_ENGINE: 'spark',
      SPARK_CONNECT_URL: `sc://127.0.0.1:${proxy.port}`,
    });
    await publishSyntheaDecember(platform);
    researcher = await researcherWithAccess(
      platform,
      'researcher@example.org',
      'synthea-observations',
      'aggregate',
    );
  }, 300_000);

  afterAll(async () => {
    proxy?.restore();
    await platform?.dispose();
    await proxy?.close();
  });

  it('fails the query with a message naming the engine, and the same query runs once it is back', async () => {
    // One total: groups this fine hold fewer than 11 patients and would be left out, and the
    // test needs a row to come back.
    const spec = {
      dataset: 'synthea-observations',
      measures: [{ fn: 'patients' }, { fn: 'mean', column: 'value' }],
    };
    proxy.cutOnNextRequest();
    const failed = await runQuery(platform, researcher, spec);
    expect(failed.job.status).toBe('failed');
    expect(failed.job.error?.message).toMatch(
      /The Spark Connect server at 127\.0\.0\.1:\d+ cannot be reached/,
    );
    expect((await checkHealth(platform)).components.engine).toMatchObject({ status: 'error' });

    proxy.restore();
    const again = await runQuery(platform, researcher, spec);
    expect(again.job.status).toBe('succeeded');
    expect(again.rows.length).toBeGreaterThan(0);
  }, 300_000);
});
