import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestPlatform, type TestPlatform } from '../../test/helper.ts';
import { ingest, prepareDataset, synthea } from '../../test/ingest-helpers.ts';
import { lakeRowFiles, readParquetObjects } from '../../test/parquet.ts';
import { researcherWithAccess, runQuery } from '../../test/query-helpers.ts';
import { deployments } from '../../test/deployments.ts';
import { releasesRepository } from '../catalog/releases-repository.ts';

/**
 * A release is as many Parquet files as its size needs. Here the file size is set tiny, so
 * that the full Synthea export (6 MB of CSV) is split as a large delivery would be.
 */
describe.each(deployments)('release files on %s', (_, { engineEnv, storage }) => {
  let platform: TestPlatform;

  beforeAll(async () => {
    platform = await createTestPlatform(
      'pglite',
      { ...engineEnv(), MEDLAKE_PARQUET_FILE_SIZE: '64KB' },
      { storage },
    );
    await prepareDataset(platform, 'synthea-observations');
  });

  afterAll(async () => {
    await platform?.dispose();
  });

  it('splits a large upload into several files, all published and all read by queries', async () => {
    const large = await ingest(platform, { file: synthea('all'), month: '2020-12' });
    const small = await ingest(platform, { file: synthea('2021-03'), month: '2021-03' });
    if (large.status !== 'published' || small.status !== 'published') {
      throw new Error(JSON.stringify({ large, small }));
    }
    const releases = releasesRepository(platform.catalog.db);
    const largeFiles = (await releases.get(large.releaseId))?.files ?? [];
    expect(largeFiles.length).toBeGreaterThan(1);
    expect(largeFiles.every((key, index) => key.endsWith(`/part-${index}.parquet`))).toBe(true);
    expect((await releases.get(small.releaseId))?.files).toHaveLength(1);
    // What the catalog lists is what the lake holds, and together they hold every row.
    const folder = largeFiles[0]!.slice(0, largeFiles[0]!.lastIndexOf('/'));
    expect(await lakeRowFiles(platform.store, `${folder}/`)).toEqual([...largeFiles].sort());
    const rows = await readParquetObjects(platform.store, largeFiles);
    expect(rows).toHaveLength(large.rows);

    // Row level: the export has few patients, whose counts would otherwise be hidden.
    const user = await researcherWithAccess(
      platform,
      'r@example.org',
      'synthea-observations',
      'row',
    );
    const { job, rows: counts } = await runQuery(platform, user, {
      dataset: 'synthea-observations',
      groupBy: [{ column: 'month' }],
      measures: [{ fn: 'count' }],
    });
    expect(job.status).toBe('succeeded');
    const byMonth = [...counts].sort((a, b) => String(a.month).localeCompare(String(b.month)));
    expect(byMonth).toEqual([
      expect.objectContaining({ month: '2020-12', rows: large.rows }),
      expect.objectContaining({ month: '2021-03', rows: small.rows }),
    ]);
  });
});
