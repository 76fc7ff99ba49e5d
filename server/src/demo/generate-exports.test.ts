import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestPlatform, type TestPlatform } from '../../test/helper.ts';
import { ingest, prepareDataset } from '../../test/ingest-helpers.ts';
import { readParquet } from '../../test/parquet.ts';
import { releasesRepository } from '../catalog/releases-repository.ts';
import { usersRepository } from '../catalog/users-repository.ts';
import { demoResearcher, loadDemoData } from '../use-cases/load-demo-data.ts';
import { listDatasetsFor } from '../use-cases/queries/describe-dataset.ts';
import { exportHeader, generateExports } from './generate-exports.ts';

describe('synthetic exports', () => {
  let directory: string;
  let platform: TestPlatform;

  beforeAll(async () => {
    directory = await mkdtemp(path.join(tmpdir(), 'medlake-demo-'));
    platform = await createTestPlatform();
  });

  afterAll(async () => {
    await platform.dispose();
    await rm(directory, { recursive: true, force: true });
  });

  it('writes one file per hospital and month, with the identifiers a real export carries', async () => {
    const files = await generateExports({
      hospitals: 2,
      months: 2,
      rows: 500,
      outDir: directory,
      seed: 7,
    });
    expect(files.map((file) => `${file.hospital} ${file.month}`)).toEqual([
      'h01 2024-01',
      'h01 2024-02',
      'h02 2024-01',
      'h02 2024-02',
    ]);
    const lines = (await readFile(files[0]?.file ?? '', 'utf8')).trimEnd().split('\n');
    expect(lines[0]).toBe(exportHeader.join(','));
    expect(lines).toHaveLength(501);
    expect(lines[1]).toMatch(/^H01-\d{8},9\d\d-\d\d-\d{4},/);
  });

  it('is repeatable for a seed', async () => {
    const [a] = await generateExports({
      hospitals: 1,
      months: 1,
      rows: 50,
      outDir: path.join(directory, 'a'),
      seed: 3,
    });
    const [b] = await generateExports({
      hospitals: 1,
      months: 1,
      rows: 50,
      outDir: path.join(directory, 'b'),
      seed: 3,
    });
    const withoutVisits = async (file: string) =>
      (await readFile(file, 'utf8')).replace(/[0-9a-f-]{36}/g, '');
    expect(await withoutVisits(a?.file ?? '')).toBe(await withoutVisits(b?.file ?? ''));
  });

  it('makes dirty rows that validation rejects, and patients that recur across months', async () => {
    await prepareDataset(platform, 'lab-results', ['h01']);
    const files = await generateExports({
      hospitals: 1,
      months: 2,
      rows: 4000,
      outDir: path.join(directory, 'dirty'),
      dirtyShare: 0.01,
    });
    const results = [];
    for (const file of files)
      results.push(
        await ingest(platform, {
          file: file.file,
          dataset: 'lab-results',
          hospital: 'h01',
          month: file.month,
        }),
      );
    const releases = releasesRepository(platform.catalog.db);
    const patientsPerMonth = [];
    for (const result of results) {
      if (result.status !== 'published') throw new Error(JSON.stringify(result));
      expect(result.rejectedRows).toBeGreaterThan(10);
      expect(Object.keys(result.quality.rejectedByReason).sort()).toEqual(
        ['identifier_in_text', 'invalid_value', 'missing_fields', 'missing_value'].sort(),
      );
      const release = await releases.get(result.releaseId);
      const rows = await readParquet(release?.files.map((key) => platform.store.locate(key)) ?? []);
      patientsPerMonth.push(new Set(rows.map((row) => row.patient)));
    }
    const [first, second] = patientsPerMonth;
    expect([...(first ?? [])].filter((patient) => second?.has(patient)).length).toBeGreaterThan(
      100,
    );
  });
});

describe('loadDemoData', () => {
  it('fills an empty installation once, and leaves one with data alone', async () => {
    const platform = await createTestPlatform();
    try {
      const demo = await loadDemoData(platform);
      const releases = await releasesRepository(platform.catalog.db).list();
      expect(releases).toHaveLength(6);
      expect(releases.every((release) => release.current && release.rowCount > 2900)).toBe(true);
      // The demo researcher's token works and sees the dataset with aggregate access.
      const found = await usersRepository(platform.catalog.db).byToken(
        demo?.token ?? '',
        new Date(),
      );
      expect(found?.user.email).toBe(demoResearcher);
      expect(found?.scopes).toEqual(['query']);
      expect(await listDatasetsFor(platform, found!.user)).toEqual([
        expect.objectContaining({ id: 'lab-results', access: 'aggregate' }),
      ]);
      expect(await loadDemoData(platform)).toBeUndefined();
      expect(await platform.store.list('landing/')).toEqual([]);
    } finally {
      await platform.dispose();
    }
  });
});
