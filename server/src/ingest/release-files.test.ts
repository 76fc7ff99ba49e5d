import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestPlatform, type TestPlatform } from '../../test/helper.ts';
import { ingest, prepareDataset, synthea } from '../../test/ingest-helpers.ts';
import { lakeRowFiles, readParquetObjects } from '../../test/parquet.ts';
import { researcherWithAccess, runQuery } from '../../test/query-helpers.ts';
import { deployments } from '../../test/deployments.ts';
import { releaseFilesRepository } from '../catalog/release-files-repository.ts';
import { releasesRepository } from '../catalog/releases-repository.ts';
import { describeDataset } from '../use-cases/queries/describe-dataset.ts';
import { dictionaryPairsKey } from './release-pairs.ts';

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

    // The report's totals are those of the rows written, counted here in JavaScript: on DuckDB
    // the rows and empty values come from the files' footers and the patients from the
    // dictionary pairs, not from a count of the rows.
    const release = await releases.get(large.releaseId);
    const perPatient = new Map<unknown, number>();
    for (const row of rows) perPatient.set(row.patient, (perPatient.get(row.patient) ?? 0) + 1);
    expect(release?.quality.rows).toBe(rows.length);
    expect(release?.quality.patients).toBe([...perPatient.keys()].filter(Boolean).length);
    expect(release?.maxRowsPerPatient).toBe(Math.max(...perPatient.values()));
    const columns = release?.quality.columns ?? [];
    expect(columns.some((column) => column.nullRate > 0 && column.nullRate < 1)).toBe(true);
    expect(columns).toEqual(
      columns.map(({ name }) => ({
        name,
        nullRate: rows.filter((row) => row[name] === null).length / rows.length,
      })),
    );

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

    // The attack on a research result: one file of the large release is lost from the lake
    // (a partial restore, an operator's mistake). A glob over the release would read the rest
    // and answer short; every query over it must fail instead, saying so without naming the
    // file, its hospital or its release, and be recorded failed like any other.
    const lost = largeFiles[1]!;
    const [lostStats] = (await releaseFilesRepository(platform.catalog.db).of([large.releaseId]))
      .get(large.releaseId)!
      .filter((file) => lost.endsWith(`/${file.file}`));
    const lostCode = lostStats?.codes?.[0];
    if (!lostCode) throw new Error('the lost file lists no code');
    await platform.store.delete(lost);
    const specs = [
      // The whole release, read as the catalog lists its files.
      {
        dataset: 'synthea-observations',
        groupBy: [{ column: 'month' }],
        measures: [{ fn: 'count' }],
      },
      // The files that may hold one code, as the planner picks them from the catalog.
      {
        dataset: 'synthea-observations',
        where: { column: 'code', op: 'eq', value: lostCode },
        measures: [{ fn: 'count' }],
      },
    ];
    for (const spec of specs) {
      const failed = await runQuery(platform, user, spec);
      expect(failed.rows).toEqual([]);
      expect(failed.job).toMatchObject({
        status: 'failed',
        error: { message: expect.stringContaining('missing from the lake') },
      });
      const message = failed.job.error?.message ?? '';
      for (const secret of [
        large.releaseId,
        'hospital',
        lost,
        'part-',
        's3',
        platform.env.MEDLAKE_HOME,
      ]) {
        expect(message).not.toContain(secret);
      }
    }
    // The other release, whose files are all there, is still answered in full.
    const { job: other, rows: otherRows } = await runQuery(platform, user, {
      dataset: 'synthea-observations',
      where: { column: 'month', op: 'eq', value: '2021-03' },
      measures: [{ fn: 'count' }],
    });
    expect(other.status).toBe('succeeded');
    expect(otherRows).toEqual([expect.objectContaining({ rows: small.rows })]);

    // The data dictionary, its pairs lost with the file and its figures to be counted again:
    // the pairs are written again from the release's rows, which must fail as the queries do
    // rather than count the release short.
    await platform.store.delete(dictionaryPairsKey(folder));
    await platform.catalog.db
      .deleteFrom('dictionary_scopes')
      .where('dataset_id', '=', 'synthea-observations')
      .execute();
    await expect(describeDataset(platform, user, 'synthea-observations')).rejects.toThrow(
      'missing from the lake',
    );
  }, 240_000);
});
