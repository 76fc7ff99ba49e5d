import { DuckDBInstance } from '@duckdb/node-api';
import { querySpecSchema } from '@medlake/shared';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { datasetsRepository } from '../src/catalog/datasets-repository.ts';
import { releasesRepository } from '../src/catalog/releases-repository.ts';
import { releaseFilesRepository } from '../src/catalog/release-files-repository.ts';
import { quoteLiteral } from '../src/engines/duckdb/duckdb-sql.ts';
import { numericTests } from '../src/demo/lab-tests.ts';
import { planOptionsOf, planQuery } from '../src/query/plan-query.ts';
import { queryColumns } from '../src/query/query-columns.ts';
import { candidateReleases } from '../src/use-cases/queries/candidate-releases.ts';
import type { TestPlatform } from './helper.ts';
import { createSyntheticLabPlatform } from './query-helpers.ts';

/**
 * The synthetic lake the query benchmarks and slow-query tests run on is laid out as ingest
 * lays out a release (clustered by code, then event date) and has its file statistics in the
 * catalog, so that what they measure is what a real lake would give.
 */
describe('synthetic lab-results lake', () => {
  let platform: TestPlatform;
  let releaseIds: string[];

  beforeAll(async () => {
    platform = await createSyntheticLabPlatform({
      hospitals: 1,
      months: 2,
      rowsPerRelease: 300_000,
    });
    const releases = await releasesRepository(platform.catalog.db).list({
      datasetId: 'lab-results',
    });
    releaseIds = releases.map((release) => release.id);
  }, 120_000);

  afterAll(() => platform?.dispose());

  it('writes each release sorted by code, then collection time, in row groups of few codes', async () => {
    const release = await releasesRepository(platform.catalog.db).get(releaseIds[0]!);
    const file = platform.store.locate(release!.files[0]!);
    const instance = await DuckDBInstance.create(':memory:');
    const connection = await instance.connect();
    try {
      const outOfOrder = await connection.runAndReadAll(
        `SELECT count(*) AS n FROM (
          SELECT code, collected_at, lag(code) OVER w AS code_before, lag(collected_at) OVER w AS at_before
          FROM (SELECT *, row_number() OVER () AS i FROM read_parquet(${quoteLiteral(file)}))
          WINDOW w AS (ORDER BY i))
        WHERE code < code_before OR (code = code_before AND collected_at < at_before)`,
      );
      expect(Number(outOfOrder.getRowObjectsJS()[0]?.n)).toBe(0);
      const groups = (
        await connection.runAndReadAll(
          `SELECT row_group_id, stats_min_value AS min, stats_max_value AS max
          FROM parquet_metadata(${quoteLiteral(file)}) WHERE path_in_schema = 'code'`,
        )
      ).getRowObjectsJS() as Array<{ min: string; max: string }>;
      // 300 k rows make groups of about 4,700 (ingest's rule: 64 per release); with some 60
      // codes each group then spans one or two of them.
      expect(groups.length).toBeGreaterThanOrEqual(32);
      const codes = [...new Set(numericTests.map((test) => test.code))].sort();
      const spans = groups.map(
        (group) => codes.filter((code) => code >= group.min && code <= group.max).length,
      );
      expect(Math.max(...spans)).toBeLessThanOrEqual(3);
    } finally {
      connection.closeSync();
      instance.closeSync();
    }
  });

  it('records what each file holds, so that the planner can leave out files of other codes', async () => {
    const files = await releaseFilesRepository(platform.catalog.db).of(releaseIds);
    expect(files.size).toBe(2);
    for (const [, stats] of files) {
      expect(stats).toHaveLength(1);
      expect(stats[0]?.rows).toBe(300_000);
      expect(stats[0]?.codes).toEqual([...new Set(numericTests.map((test) => test.code))].sort());
      expect(stats[0]?.firstEvent?.slice(0, 7)).toMatch(/^2024-0[12]$/);
    }
    const dataset = await datasetsRepository(platform.catalog.db).get('lab-results');
    const spec = querySpecSchema.parse({
      dataset: 'lab-results',
      where: { column: 'code', op: 'eq', value: 'not-a-code' },
      measures: [{ fn: 'count' }],
    });
    const access = { level: 'aggregate' as const, hospitals: null, holder: 'user:test' };
    const options = planOptionsOf(queryColumns(dataset!.contract));
    const plan = planQuery(spec, await candidateReleases(platform, spec, access, options), options);
    expect(plan.main).toEqual([]);
  });
});

describe('synthetic lab-results lake over more than a year', () => {
  let platform: TestPlatform | undefined;
  afterAll(() => platform?.dispose());

  it('runs its months on into the next year rather than failing on a thirteenth', async () => {
    platform = await createSyntheticLabPlatform({ hospitals: 1, months: 13, rowsPerRelease: 500 });
    const releases = await releasesRepository(platform.catalog.db).list({
      datasetId: 'lab-results',
    });
    const months = releases.map((release) => release.month).sort();
    expect(months).toHaveLength(13);
    expect(months[0]).toBe('2024-01');
    expect(months.at(-1)).toBe('2025-01');
  }, 120_000);
});
