import { DuckDBInstance } from '@duckdb/node-api';
import { querySpecSchema } from '@medlake/shared';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestPlatform, type TestPlatform } from '../../test/helper.ts';
import { ingest, prepareDataset, synthea } from '../../test/ingest-helpers.ts';
import { deployments } from '../../test/deployments.ts';
import { datasetsRepository } from '../catalog/datasets-repository.ts';
import { releaseFilesRepository } from '../catalog/release-files-repository.ts';
import { releasesRepository } from '../catalog/releases-repository.ts';
import { planOptionsOf, planQuery } from '../query/plan-query.ts';
import { queryColumns } from '../query/query-columns.ts';
import { candidateReleases } from '../use-cases/queries/candidate-releases.ts';
import { researcherWithAccess, runQuery } from '../../test/query-helpers.ts';

type RowGroup = { rows: number; min: string; max: string; bloom: boolean; dictionary: boolean };

/**
 * A release is written sorted by code, then event date, so that the row groups' statistics
 * tell a reader which groups can hold a code: read back here from the Parquet itself, as any
 * reader sees it. The full Synthea export (22 k rows, about a hundred codes) is written in
 * small files, so that the order must hold across files as well as within them.
 */
describe.each(deployments.filter(([, { storage }]) => storage === 'local'))(
  'release layout on %s',
  (name, { engineEnv, storage }) => {
    let platform: TestPlatform;
    let files: string[];
    let releaseId: string;

    beforeAll(async () => {
      platform = await createTestPlatform(
        'pglite',
        { ...engineEnv(), MEDLAKE_PARQUET_FILE_SIZE: '256KB' },
        { storage },
      );
      await prepareDataset(platform, 'synthea-observations');
      const result = await ingest(platform, { file: synthea('all'), month: '2020-12' });
      if (result.status !== 'published') throw new Error(JSON.stringify(result));
      releaseId = result.releaseId;
      const release = await releasesRepository(platform.catalog.db).get(result.releaseId);
      files = (release?.files ?? []).map((key) => platform.store.locate(key));
    }, 240_000);

    afterAll(async () => {
      await platform?.dispose();
    });

    it('writes the rows sorted by code, then event date, from the first file to the last', async () => {
      expect(files.length).toBeGreaterThan(1);
      const rows = await query<{ code: string | null; observed_at: string | null }>(
        `SELECT code, CAST(observed_at AS VARCHAR) AS observed_at FROM read_parquet(${list(files)})`,
      );
      expect(rows.length).toBeGreaterThan(20_000);
      const key = (row: (typeof rows)[number]): [string, string] => [
        row.code ?? '',
        row.observed_at ?? '',
      ];
      const outOfOrder = rows.filter((row, index) => {
        const before = rows[index - 1];
        if (!before) return false;
        const [code, date] = key(row);
        const [previousCode, previousDate] = key(before);
        return code < previousCode || (code === previousCode && date < previousDate);
      });
      expect(outOfOrder.slice(0, 3)).toEqual([]);
    });

    it('gives row groups ordered code ranges, with a bloom filter, so one code reads few', async () => {
      const groups: RowGroup[] = [];
      for (const file of files) groups.push(...(await codeRowGroups(file)));
      expect(groups.length).toBeGreaterThan(4);
      // Each group starts at or after the code the previous one ended with: at most that
      // code is shared by the two.
      const overlapping = groups.filter((group, index) => {
        const before = groups[index - 1];
        return before !== undefined && group.min < before.max;
      });
      expect(overlapping).toEqual([]);
      // A point lookup of a code is answered without reading its values: by a bloom filter,
      // or where Spark's writer keeps the code dictionary-encoded (and writes no bloom filter
      // then), by the dictionary.
      expect(groups.every((group) => group.bloom || group.dictionary)).toBe(true);
      if (name === 'DuckDB') expect(groups.every((group) => group.bloom)).toBe(true);
      // The most common code's rows are in a few of the groups; the others can be skipped.
      const [common] = await query<{ code: string }>(
        `SELECT code FROM read_parquet(${list(files)}) GROUP BY code ORDER BY count(*) DESC LIMIT 1`,
      );
      const holding = groups.filter(
        (group) => group.min <= common!.code && common!.code <= group.max,
      );
      expect(holding.length).toBeGreaterThan(0);
      expect(holding.length).toBeLessThan(groups.length / 2);
    });

    it('plans a one-code query on only the files the catalog says hold that code', async () => {
      const dataset = await datasetsRepository(platform.catalog.db).get('synthea-observations');
      const access = { level: 'row' as const, hospitals: null, holder: 'user:test' };
      // A code that some files hold and others do not: the second file's first.
      const [code] = await query<{ code: string }>(
        `SELECT min(code) AS code FROM read_parquet(${list([files[1]!])})`,
      );
      const holding = await query<{ file: string }>(
        `SELECT DISTINCT filename AS file FROM read_parquet(${list(files)}, filename = true) WHERE code = '${code!.code}'`,
      );
      const names = (paths: string[]) => paths.map((file) => file.slice(file.lastIndexOf('/') + 1));
      const expected = names(holding.map((row) => row.file)).sort();
      expect(expected.length).toBeLessThan(files.length);

      const where = { column: 'code', op: 'eq', value: code!.code };
      const spec = querySpecSchema.parse({
        dataset: 'synthea-observations',
        where,
        measures: [{ fn: 'count' }],
      });
      const options = planOptionsOf(queryColumns(dataset!.contract));
      const candidates = await candidateReleases(platform, spec, access, options);
      const release = candidates.find((candidate) => candidate.id === releaseId);
      const [all] = await query<{ n: bigint }>(
        `SELECT count(*) AS n FROM read_parquet(${list(files)})`,
      );
      const recorded = await releaseFilesRepository(platform.catalog.db).of([releaseId]);
      expect(recorded.get(releaseId)?.reduce((sum, file) => sum + file.rows, 0)).toBe(
        Number(all!.n),
      );
      // The catalog gives the planner only the files listing the code.
      expect(release?.files?.map((file) => file.file).sort()).toEqual(expected);
      const plan = planQuery(spec, candidates, options);
      expect([...(plan.main[0]?.readFiles ?? [])].sort()).toEqual(expected);

      // The query reads only those files and still counts every row of the code.
      const user = await researcherWithAccess(
        platform,
        'r@example.org',
        'synthea-observations',
        'row',
      );
      const { job, rows } = await runQuery(platform, user, {
        dataset: 'synthea-observations',
        where,
        measures: [{ fn: 'count' }],
      });
      expect(job.status).toBe('succeeded');
      const [direct] = await query<{ n: bigint }>(
        `SELECT count(*) AS n FROM read_parquet(${list(files)}) WHERE code = '${code!.code}'`,
      );
      expect(rows[0]?.rows).toBe(Number(direct!.n));
    });
  },
);

/** The code column's statistics per row group of a Parquet file, in the file's order. */
async function codeRowGroups(file: string): Promise<RowGroup[]> {
  const rows = await query<RowGroup>(
    `SELECT row_group_num_rows AS rows, stats_min AS min, stats_max AS max,
      bloom_filter_offset IS NOT NULL AS bloom, dictionary_page_offset IS NOT NULL AS dictionary
    FROM parquet_metadata(${list([file])}) WHERE path_in_schema = 'code' ORDER BY row_group_id`,
  );
  return rows.map((row) => ({ ...row, rows: Number(row.rows) }));
}

function list(files: readonly string[]): string {
  return `[${files.map((file) => `'${file.replaceAll("'", "''")}'`).join(', ')}]`;
}

async function query<T>(sql: string): Promise<T[]> {
  const instance = await DuckDBInstance.create(':memory:');
  const connection = await instance.connect();
  try {
    return (await connection.runAndReadAll(sql)).getRowObjectsJS() as T[];
  } finally {
    connection.closeSync();
    instance.closeSync();
  }
}
