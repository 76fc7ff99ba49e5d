import { randomUUID } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { catalogBackends } from '../../test/catalog-backends.ts';
import { createTestPlatform, testActor, type TestPlatform } from '../../test/helper.ts';
import { contractFile } from '../../test/ingest-helpers.ts';
import { addHospital, saveDataset } from '../use-cases/manage-datasets.ts';
import { jobsRepository } from './jobs-repository.ts';
import type { ReleaseFileStats } from './release-files-repository.ts';
import { releaseFilesRepository } from './release-files-repository.ts';
import { releasesRepository } from './releases-repository.ts';

const file = (name: string, codes: string[] | null): ReleaseFileStats => ({
  file: name,
  rows: 100,
  codes,
  firstEvent: '2024-01-01',
  lastEvent: '2024-01-31',
});

/**
 * The planner asks the catalog for the files of many releases that may hold a query's codes:
 * the answer must tell a release none of whose files does from one without statistics.
 */
describe.each(catalogBackends())('the files of releases that may hold codes, on %s', (kind) => {
  let platform: TestPlatform;
  const ids = { clustered: randomUUID(), otherCodes: randomUUID(), unknown: randomUUID() };

  beforeAll(async () => {
    platform = await createTestPlatform(kind);
    const contract = JSON.parse(await readFile(contractFile('lab-results'), 'utf8'));
    const dataset = await saveDataset(platform, contract);
    await addHospital(platform, testActor, { id: 'h1', name: 'Hospital 1' });
    const releases: Array<[string, string, ReleaseFileStats[]]> = [
      [
        ids.clustered,
        '2024-01',
        [
          file('part-10.parquet', null),
          file('part-2.parquet', ['b', 'c']),
          file('part-0.parquet', ['a', 'b']),
          file('part-3.parquet', ['d']),
        ],
      ],
      [ids.otherCodes, '2024-02', [file('part-0.parquet', ['x'])]],
      [ids.unknown, '2024-03', []],
    ];
    for (const [id, month, fileStats] of releases) {
      const jobId = randomUUID();
      await jobsRepository(platform.catalog.db).start({ id: jobId, kind: 'ingest', params: {} });
      await releasesRepository(platform.catalog.db).publish(
        {
          id,
          datasetId: dataset.id,
          hospitalId: 'h1',
          month,
          jobId,
          contractVersion: dataset.contractVersion,
          contentId: randomUUID(),
          sourceBytes: 0,
          rowCount: 100 * fileStats.length,
          rejectedRowCount: 0,
          files: fileStats.map((stats) => `lake/${id}/${stats.file}`),
          fileStats,
          quality: {} as never,
        },
        async () => {},
      );
    }
  }, 60_000);

  afterAll(() => platform?.dispose());

  it('gives the files listing a code, and those listing too many to tell, in file order', async () => {
    const files = await releaseFilesRepository(platform.catalog.db).holding(
      [ids.clustered, ids.otherCodes, ids.unknown],
      ['b', 'z'],
    );
    expect(files.get(ids.clustered)).toEqual([
      { file: 'part-0.parquet', codes: ['b'] },
      { file: 'part-2.parquet', codes: ['b'] },
      { file: 'part-10.parquet', codes: null },
    ]);
    expect(files.get(ids.otherCodes)).toEqual([]);
    expect(files.has(ids.unknown)).toBe(false);
  });

  it('gives the same files for one code whether few releases are asked or many', async () => {
    const repository = releaseFilesRepository(platform.catalog.db);
    const many = [...Array.from({ length: 1_500 }, () => randomUUID()), ids.clustered];
    const expected = [
      { file: 'part-0.parquet', codes: ['b'] },
      { file: 'part-2.parquet', codes: ['b'] },
      { file: 'part-10.parquet', codes: null },
    ];
    expect((await repository.holding([ids.clustered], ['b'])).get(ids.clustered)).toEqual(expected);
    expect((await repository.holding(many, ['b'])).get(ids.clustered)).toEqual(expected);
    expect((await repository.holding(many, ['d'])).get(ids.otherCodes)).toBeUndefined();
  });

  it('finds many releases itself from a statement selecting them, as from their ids', async () => {
    const repository = releaseFilesRepository(platform.catalog.db);
    const current = releasesRepository(platform.catalog.db);
    // More ids than are read one by one; the statement selects the three current releases.
    const many = [...Array.from({ length: 1_500 }, () => randomUUID()), ...Object.values(ids)];
    const fromIds = await repository.holding(many, ['b', 'x']);
    const found = await repository.holding(
      many,
      ['b', 'x'],
      current.locationIds('lab-results', undefined, { from: '2024-01', to: '2024-02' }),
    );
    expect(found).toEqual(fromIds);
    expect(found.get(ids.otherCodes)).toEqual([{ file: 'part-0.parquet', codes: ['x'] }]);
    expect(found.get(ids.clustered)?.map((stats) => stats.file)).toEqual([
      'part-0.parquet',
      'part-2.parquet',
      'part-10.parquet',
    ]);
    expect(found.has(ids.unknown)).toBe(false);
  });

  it('answers for more releases than a statement may have parameters', async () => {
    const many = [
      ...Array.from({ length: 70_000 }, () => randomUUID()),
      ids.otherCodes,
      ids.clustered,
    ];
    const files = await releaseFilesRepository(platform.catalog.db).holding(many, ['x', 'd']);
    expect([...files.keys()].sort()).toEqual([ids.otherCodes, ids.clustered].sort());
    expect(files.get(ids.otherCodes)?.map((stats) => stats.codes)).toEqual([['x']]);
    expect(files.get(ids.clustered)?.map((stats) => [stats.file, stats.codes])).toEqual([
      ['part-3.parquet', ['d']],
      ['part-10.parquet', null],
    ]);
  });
});
