import { randomBytes } from 'node:crypto';
import { mkdtemp, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestPlatform, type TestPlatform } from '../../../test/helper.ts';
import { ingest, prepareDataset } from '../../../test/ingest-helpers.ts';
import { generateExports } from '../../demo/generate-exports.ts';
import { readParquet } from '../../../test/parquet.ts';
import { bytesOf } from '../../env.ts';
import { releasesRepository } from '../../catalog/releases-repository.ts';

/**
 * A release larger than DuckDB can sort at once within the ingest's memory limit is written
 * a range of codes at a time, each range sorted alone: a generated month (120,000 rows, 23
 * codes) ingested three ways, sharing one vault, must give the same rows in the same order.
 * `whole` sorts in one statement; `bounded` has a memory limit below eight times the file's
 * size, so that the ranges follow the memory; `cut` has files so small that each code's rows
 * must be cut by event date.
 */
describe('a release sorted a range at a time on DuckDB', () => {
  let vault: string;
  let scratch: string;
  let csv: string;
  const platforms: Record<'whole' | 'bounded' | 'cut', TestPlatform> = {} as never;
  const memoryLimit = '128MB';

  beforeAll(async () => {
    scratch = await mkdtemp(path.join(tmpdir(), 'medlake-sorted-release-'));
    const [generated] = await generateExports({
      hospitals: 1,
      months: 1,
      rows: 120_000,
      outDir: scratch,
      firstMonth: '2024-03',
    });
    csv = generated!.file;
    vault = await mkdtemp(path.join(tmpdir(), 'medlake-shared-vault-'));
    const shared = {
      MEDLAKE_VAULT_DIR: vault,
      MEDLAKE_VAULT_KEY: randomBytes(32).toString('hex'),
    };
    platforms.whole = await createTestPlatform('pglite', shared);
    platforms.bounded = await createTestPlatform('pglite', {
      ...shared,
      MEDLAKE_INGEST_MEMORY: memoryLimit,
    });
    platforms.cut = await createTestPlatform('pglite', {
      ...shared,
      MEDLAKE_PARQUET_FILE_SIZE: '100KB',
    });
    for (const platform of Object.values(platforms)) {
      await prepareDataset(platform, 'lab-results', ['h01']);
      const result = await ingest(platform, {
        file: csv,
        month: '2024-03',
        dataset: 'lab-results',
        hospital: 'h01',
      });
      if (result.status !== 'published') throw new Error(JSON.stringify(result));
    }
  }, 240_000);

  afterAll(async () => {
    for (const platform of Object.values(platforms)) await platform?.dispose();
    await rm(vault, { recursive: true, force: true });
    await rm(scratch, { recursive: true, force: true });
  });

  async function filesOf(name: keyof typeof platforms): Promise<string[]> {
    const platform = platforms[name];
    const [listed] = await releasesRepository(platform.catalog.db).list();
    const release = await releasesRepository(platform.catalog.db).get(listed!.id);
    return (release?.files ?? []).map((key) => platform.store.locate(key));
  }

  // Each release's rows, in the order of its files and of the rows within them, read once.
  const read = new Map<string, Promise<Array<Record<string, unknown>>>>();
  const rowsIn = (files: string[]) => {
    const key = files.join('\n');
    if (!read.has(key)) read.set(key, readParquet(files));
    return read.get(key)!;
  };

  /** Each row's sort key, in the order of the files and of the rows within them. */
  async function keysOf(files: string[]): Promise<string[]> {
    return (await rowsIn(files)).map(
      (row) => `${String(row.code)} ${(row.collected_at as Date).toISOString()}`,
    );
  }

  it('takes the ranges only for a month beyond what one sort may hold', async () => {
    expect((await stat(csv)).size).toBeGreaterThan(bytesOf(memoryLimit) / 8);
    expect(await filesOf('whole')).toHaveLength(1);
    expect((await filesOf('bounded')).length).toBeGreaterThan(1);
  });

  it.each(['bounded', 'cut'] as const)(
    'writes the rows (%s) sorted by code, then date, within and across files',
    async (name) => {
      const keys = await keysOf(await filesOf(name));
      expect(keys.length).toBe(120_000);
      expect(keys).toEqual([...keys].sort());
      // The same order as the release sorted whole: rows that share both keys may differ.
      expect(keys).toEqual(await keysOf(await filesOf('whole')));
    },
  );

  it.each(['bounded', 'cut'] as const)('writes the same rows (%s)', async (name) => {
    const rowsOf = async (files: string[]) =>
      (await rowsIn(files))
        .map(({ release: _, ...row }) =>
          JSON.stringify(row, (_key, value: unknown) =>
            typeof value === 'bigint' ? String(value) : value,
          ),
        )
        .sort();
    const [ranged, whole] = [
      await rowsOf(await filesOf(name)),
      await rowsOf(await filesOf('whole')),
    ];
    expect(ranged.length).toBe(whole.length);
    const differing = ranged.filter((row, index) => row !== whole[index]);
    expect(differing.slice(0, 3)).toEqual([]);
  });

  it.each(['bounded', 'cut'] as const)(
    'reports the same quality figures (%s) as the release sorted whole',
    async (name) => {
      // The totals come from the files' footers and the dictionary pairs, which differ with
      // the files a release is cut into; the figures must not.
      // Means are sums in whichever order the rows are read, so they are compared to 12 digits.
      const published = async (key: keyof typeof platforms) => {
        const releases = releasesRepository(platforms[key].catalog.db);
        const [listed] = await releases.list();
        const release = await releases.get(listed!.id);
        const quality = release!.quality;
        const codes = quality.codes.map((code) => ({
          ...code,
          mean: code.mean === null ? null : Number(code.mean.toPrecision(12)),
        }));
        return { ...quality, codes, maxRowsPerPatient: release?.maxRowsPerPatient };
      };
      const whole = await published('whole');
      expect(whole.rows).toBeGreaterThan(0);
      expect(whole.columns.some((column) => column.nullRate > 0)).toBe(true);
      expect(await published(name)).toEqual(whole);
    },
  );

  it('cuts a code with more rows than a file holds by event date, in order', async () => {
    const files = await filesOf('cut');
    const codesPerFile = await Promise.all(
      files.map(async (file) => new Set((await readParquet(file)).map((row) => String(row.code)))),
    );
    // A code in several consecutive files: cut, not repeated out of order.
    const spread = new Map<string, number[]>();
    codesPerFile.forEach((codes, index) => {
      for (const code of codes) spread.set(code, [...(spread.get(code) ?? []), index]);
    });
    const cut = [...spread.values()].filter((indexes) => indexes.length > 1);
    expect(cut.length).toBeGreaterThan(0);
    for (const indexes of cut) {
      expect(indexes).toEqual(indexes.map((_, offset) => indexes[0]! + offset));
    }
  });
});
