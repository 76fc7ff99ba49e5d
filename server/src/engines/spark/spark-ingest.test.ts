import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { QualityReport } from '@medlake/shared';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AppError } from '../../errors.ts';
import { createTestPlatform, type TestPlatform } from '../../../test/helper.ts';
import { ingest, prepareDataset, synthea } from '../../../test/ingest-helpers.ts';
import { parquetColumns, readParquet } from '../../../test/parquet.ts';
import { testSparkUrl } from '../../../test/spark.ts';
import { releasesRepository } from '../../catalog/releases-repository.ts';
import { withoutValues } from './spark-ingest.ts';

/**
 * The Synthea export ingested by two deployments that share one vault, one on DuckDB and one
 * on Spark: the lake and the quality report must not tell them apart.
 */
describe('ingestion on Spark', () => {
  let vault: string;
  const platforms: Record<'duckdb' | 'spark', TestPlatform> = {} as never;
  const months = ['2020-12', '2021-03'] as const;

  beforeAll(async () => {
    vault = await mkdtemp(path.join(tmpdir(), 'medlake-shared-vault-'));
    const shared = {
      MEDLAKE_VAULT_DIR: vault,
      MEDLAKE_VAULT_KEY: randomBytes(32).toString('hex'),
    };
    platforms.duckdb = await createTestPlatform('pglite', shared);
    platforms.spark = await createTestPlatform('pglite', {
      ...shared,
      MEDLAKE_ENGINE: 'spark',
      SPARK_CONNECT_URL: testSparkUrl(),
    });
    for (const platform of Object.values(platforms)) {
      await prepareDataset(platform, 'synthea-observations');
      for (const month of months) await ingest(platform, { file: synthea(month), month });
    }
  }, 240_000);

  afterAll(async () => {
    for (const platform of Object.values(platforms)) await platform?.dispose();
    await rm(vault, { recursive: true, force: true });
  });

  async function release(engine: 'duckdb' | 'spark', month: string) {
    const platform = platforms[engine];
    const releases = await releasesRepository(platform.catalog.db).list();
    const found = releases.find((candidate) => candidate.month === month);
    if (!found) throw new Error(`no release of ${month} on ${engine}`);
    const full = await releasesRepository(platform.catalog.db).get(found.id);
    const files = (full?.files ?? []).map((key) => platform.store.locate(key));
    return { quality: full!.quality, files };
  }

  it.each(months)('gives the same quality report for %s', async (month) => {
    const [duckdb, spark] = [await release('duckdb', month), await release('spark', month)];
    expect(duckdb.quality.rows).toBeGreaterThan(500);
    expect(comparable(spark.quality)).toEqual(comparable(duckdb.quality));
  });

  it.each(months)('writes the same rows, pseudonyms and column types for %s', async (month) => {
    const [duckdb, spark] = [await release('duckdb', month), await release('spark', month)];
    // Every column but the release id, which each deployment draws itself.
    const rowsOf = async (files: string[]) =>
      (await readParquet(files))
        .map(({ release: _, ...row }) => JSON.stringify(row, jsonValue))
        .sort();
    const [duckdbRows, sparkRows] = [await rowsOf(duckdb.files), await rowsOf(spark.files)];
    expect(sparkRows.length).toBe(duckdbRows.length);
    const differing = sparkRows.filter((row, index) => row !== duckdbRows[index]);
    expect(differing.slice(0, 3)).toEqual([]);
    expect(await parquetColumns(spark.files[0]!)).toEqual(await parquetColumns(duckdb.files[0]!));
  });

  it.each(months)('writes %s in the same order, by code then date', async (month) => {
    const [duckdb, spark] = [await release('duckdb', month), await release('spark', month)];
    // Rows that share a code and a date may come in either order; the sort keys may not.
    const keysOf = async (files: string[]) =>
      (await readParquet(files)).map((row) => `${String(row.code)} ${String(row.observed_at)}`);
    const [duckdbKeys, sparkKeys] = [await keysOf(duckdb.files), await keysOf(spark.files)];
    expect(duckdbKeys.length).toBeGreaterThan(500);
    expect(duckdbKeys).toEqual([...duckdbKeys].sort());
    expect(sparkKeys).toEqual(duckdbKeys);
  });

  it('blanks quoted values in a Spark error, which may be a patient’s', () => {
    const error = new AppError(
      'engine_failed',
      "Spark could not run the statement: '999-25-1225' is bad",
    );
    expect((withoutValues(error) as Error).message).toBe(
      "Spark could not run the statement: '…' is bad",
    );
  });
});

/**
 * A quality report with its figures to 12 significant digits (sums may differ in the last bit)
 * and without the previous release's id, which each deployment drew itself.
 */
function comparable(report: QualityReport): unknown {
  return JSON.parse(
    JSON.stringify(report, (key, value) => {
      if (key === 'releaseId') return undefined;
      return typeof value === 'number' && !Number.isInteger(value)
        ? Number(value.toPrecision(12))
        : value;
    }),
  );
}

function jsonValue(_: string, value: unknown): unknown {
  if (typeof value === 'bigint') return String(value);
  return value;
}
