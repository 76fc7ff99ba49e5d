import { readFile } from 'node:fs/promises';
import { parse } from 'csv-parse/sync';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestPlatform, testActor, type TestPlatform } from '../../../test/helper.ts';
import { ingest, prepareDataset, synthea } from '../../../test/ingest-helpers.ts';
import { researcherWithAccess, runQuery } from '../../../test/query-helpers.ts';
import { testSparkUrl } from '../../../test/spark.ts';
import type { User } from '../../catalog/users-repository.ts';
import { homeLayout } from '../../home-layout.ts';
import type { Platform } from '../../platform.ts';
import { checkHealth } from '../../use-cases/check-health.ts';
import { addUser } from '../../use-cases/manage-access.ts';
import { exportQueryResult } from '../../use-cases/queries/export-query.ts';
import { previewUpload } from '../../use-cases/uploads/read-uploads.ts';
import { releasesRepository } from '../../catalog/releases-repository.ts';
import { createDuckDbEngine } from '../duckdb/duckdb-engine.ts';
import { createSparkEngine } from './spark-engine.ts';
import type { QueryEngine } from '../types.ts';

/**
 * A deployment configured for Spark (MEDLAKE_ENGINE=spark): its queries, pages, exports and
 * previews run on the Spark Connect server, and give what DuckDB gives over the same lake.
 */
describe('a platform on Spark', () => {
  let platform: TestPlatform;
  let duckdb: QueryEngine;
  let onDuckDb: Platform;
  const users: Record<'aggregate' | 'row', User> = {} as never;
  let uploadId = '';

  beforeAll(async () => {
    platform = await createTestPlatform('pglite', {
      MEDLAKE_ENGINE: 'spark',
      SPARK_CONNECT_URL: testSparkUrl(),
    });
    const layout = homeLayout(platform.env.MEDLAKE_HOME);
    duckdb = await createDuckDbEngine({
      allowedDirectories: [layout.lake, layout.results],
      tempDirectory: layout.engineTemp,
    });
    onDuckDb = { ...platform, engine: duckdb };
    await prepareDataset(platform, 'synthea-observations');
    const published = await ingest(platform, { file: synthea('2020-12'), month: '2020-12' });
    uploadId = published.jobId;
    await ingest(platform, { file: synthea('2021-03'), month: '2021-03' });
    for (const level of ['aggregate', 'row'] as const) {
      const email = `${level}@example.org`;
      users[level] = await researcherWithAccess(platform, email, 'synthea-observations', level);
    }
  }, 120_000);

  afterAll(async () => {
    await duckdb?.close();
    await platform?.dispose();
  });

  it('reports Spark as its engine, and healthy', async () => {
    expect(platform.engine.kind).toBe('spark');
    const health = await checkHealth(platform);
    expect(JSON.stringify(health)).toContain('spark');
    expect(health.status).toBe('ok');
  });

  /** The CSV export of a query's result on an engine, parsed, numbers as numbers. */
  async function exported(on: Platform, user: User, spec: object) {
    const { job } = await runQuery(on, user, spec);
    expect(job.status).toBe('succeeded');
    const link = await exportQueryResult(on, { user, source: 'test' }, job.id, 'csv');
    const key = `results/${job.id}/export.csv`;
    expect(link.bytes).toBeGreaterThan(0);
    const text = await readFile(on.store.locate(key), 'utf8');
    const [header, ...rows] = parse(text) as string[][];
    const cells = rows
      .map((row) =>
        row.map((cell) =>
          /^-?\d+(\.\d+)?(E-?\d+)?$/i.test(cell) ? Number(Number(cell).toPrecision(10)) : cell,
        ),
      )
      .map((row) => JSON.stringify(row))
      .sort();
    return { header, cells };
  }

  it('exports an aggregate with small groups left out exactly as DuckDB does', async () => {
    const spec = {
      dataset: 'synthea-observations',
      groupBy: [{ column: 'code' }],
      measures: [
        { fn: 'patients' },
        { fn: 'count' },
        { fn: 'mean', column: 'value' },
        { fn: 'percentile', column: 'value', p: 0.5 },
      ],
    };
    const spark = await exported(platform, users.aggregate, spec);
    const duck = await exported(onDuckDb, users.aggregate, spec);
    expect(spark.header).toEqual(duck.header);
    expect(spark.cells).toEqual(duck.cells);
    // Every group shown holds at least 11 patients (the first measure), on both engines; of
    // 116 codes in these two months, a few have that many.
    expect(spark.cells.length).toBeGreaterThan(0);
    for (const row of spark.cells) {
      expect((JSON.parse(row) as number[])[1]).toBeGreaterThanOrEqual(11);
    }
  });

  it('exports rows, dates and times as DuckDB does', async () => {
    const spec = {
      dataset: 'synthea-observations',
      where: { op: 'code', codes: ['8302-2', '29463-7'] },
      select: ['patient', 'observed_at', 'birth_year', 'code', 'value', 'unit', 'month'],
    };
    const spark = await exported(platform, users.row, spec);
    const duck = await exported(onDuckDb, users.row, spec);
    expect(spark.header).toEqual(duck.header);
    expect(spark.cells).toEqual(duck.cells);
    expect(spark.cells.length).toBeGreaterThan(20);
  });

  it('previews an upload’s release through Spark', async () => {
    const preview = await previewUpload(
      platform,
      {
        user: await addUser(platform, testActor, {
          email: 'admin@example.org',
          name: 'A',
          role: 'admin',
        }),
        source: 'test',
      },
      uploadId,
    );
    expect(preview.rows).toHaveLength(20);
    expect(preview.rows[0]).toMatchObject({ hospital: 'synthea', month: '2020-12' });
  });
});

describe('a platform whose Spark is down', () => {
  let platform: TestPlatform;
  let down: Platform;

  beforeAll(async () => {
    // The lake is filled on DuckDB; then the same home is run against a Spark where nothing
    // listens (port 1). The server must still start.
    platform = await createTestPlatform();
    await prepareDataset(platform, 'synthea-observations');
    await ingest(platform, { file: synthea('2020-12'), month: '2020-12' });
    const url = 'sc://127.0.0.1:1';
    down = {
      ...platform,
      env: { ...platform.env, MEDLAKE_ENGINE: 'spark', SPARK_CONNECT_URL: url },
      engine: await createSparkEngine({ url, store: platform.store }),
    };
  });

  afterAll(async () => {
    await down?.engine.close();
    await platform?.dispose();
  });

  it('fails an upload with a clear error and publishes nothing, without hanging', async () => {
    const before = await releasesRepository(platform.catalog.db).list();
    await expect(ingest(down, { file: synthea('2021-03'), month: '2021-03' })).rejects.toThrow(
      /Spark Connect server at 127\.0\.0\.1:1 cannot be reached/,
    );
    expect(await releasesRepository(platform.catalog.db).list()).toEqual(before);
  });

  it('says so in its health report and on a query, without hanging', async () => {
    const health = await checkHealth(down);
    expect(health.status).toBe('degraded');
    expect(health.components.engine).toMatchObject({
      status: 'error',
      kind: 'spark',
      message: expect.stringMatching(/Spark Connect server at 127\.0\.0\.1:1 cannot be reached/),
    });
    const user = await researcherWithAccess(
      platform,
      'r@example.org',
      'synthea-observations',
      'aggregate',
    );
    const { job } = await runQuery(down, user, {
      dataset: 'synthea-observations',
      measures: [{ fn: 'patients' }],
    });
    expect(job.status).toBe('failed');
    expect(job.error?.message).toMatch(/cannot be reached/);
  });
});
