import type { QualityReport } from '@medlake/shared';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestPlatform, type TestPlatform } from '../../test/helper.ts';
import { ingest, prepareDataset, syntheaHeader, syntheaRow } from '../../test/ingest-helpers.ts';
import { readParquet } from '../../test/parquet.ts';
import { researcherWithAccess, runQuery } from '../../test/query-helpers.ts';
import { testSparkUrl } from '../../test/spark.ts';
import { releasesRepository } from '../catalog/releases-repository.ts';
import type { User } from '../catalog/users-repository.ts';

/**
 * Two hospitals send glucose, one in mg/dL and one in mmol/L: once ingested, the mean across
 * both is the mean of the values converted by hand, on DuckDB and on Spark alike.
 */
const glucose = '2345-7';
const patients = 12;
const northMgPerDl = Array.from({ length: patients }, (_, index) => 80 + 3 * index);
const southMmolPerL = Array.from({ length: patients }, (_, index) => 4.5 + 0.25 * index);
/** Glucose's molar mass in the units configuration: 1 mmol/L is 18.0156 mg/dL. */
const mgPerDlPerMmolPerL = 180.156 / 10;

function row(hospital: string, index: number, code: string, value: number, unit: string): string {
  return syntheaRow({
    patient: `${hospital}-${String(index).padStart(4, '0')}`,
    index,
    city: 'Springfield',
    zip: '01103',
    date: `2021-03-${String((index % 27) + 1).padStart(2, '0')}`,
    category: 'laboratory',
    code,
    description: code === glucose ? 'Glucose' : 'Body Weight',
    value,
    unit,
  });
}

const north = [
  syntheaHeader,
  ...northMgPerDl.map((value, index) => row('north', index, glucose, value, 'mg/dL')),
].join('\n');
const south = [
  syntheaHeader,
  ...southMmolPerL.map((value, index) => row('south', index, glucose, value, 'mmol/L')),
  // A unit that is not a concentration, and a weight no one has.
  row('south', 0, glucose, 7, 'mg/kg'),
  row('south', 1, '29463-7', 2000, 'kg'),
  row('south', 2, '29463-7', 150, '[lb_av]'),
].join('\n');

describe.each(['duckdb', 'spark'] as const)('canonical units on %s', (engine) => {
  let platform: TestPlatform;
  let researcher: User;

  beforeAll(async () => {
    platform = await createTestPlatform(
      'pglite',
      engine === 'spark' ? { MEDLAKE_ENGINE: 'spark', SPARK_CONNECT_URL: testSparkUrl() } : {},
    );
    await prepareDataset(platform, 'synthea-observations', ['north', 'south']);
    await ingest(platform, { text: north, hospital: 'north', month: '2021-03' });
    await ingest(platform, { text: south, hospital: 'south', month: '2021-03' });
    researcher = await researcherWithAccess(
      platform,
      'researcher@example.org',
      'synthea-observations',
      'row',
    );
  }, 240_000);

  afterAll(async () => {
    await platform?.dispose();
  });

  async function release(hospital: string) {
    const repository = releasesRepository(platform.catalog.db);
    const found = (await repository.list()).find((candidate) => candidate.hospitalId === hospital);
    const full = found && (await repository.get(found.id));
    if (!full) throw new Error(`no release of ${hospital}`);
    return {
      quality: full.quality as QualityReport,
      files: full.files.map((key) => platform.store.locate(key)),
    };
  }

  it('gives the mean across hospitals of the values converted to mg/dL', async () => {
    const byHand =
      [...northMgPerDl, ...southMmolPerL.map((value) => value * mgPerDlPerMmolPerL)].reduce(
        (sum, value) => sum + value,
        0,
      ) /
      (2 * patients);
    const { job, rows } = await runQuery(platform, researcher, {
      dataset: 'synthea-observations',
      where: { op: 'code', codes: [glucose] },
      measures: [{ fn: 'patients' }, { fn: 'mean', column: 'value' }],
    });
    expect(job.status).toBe('succeeded');
    expect(rows).toHaveLength(1);
    const values = Object.values(rows[0]!).map(Number);
    expect(values[0]).toBe(2 * patients);
    expect(values[1]).toBeCloseTo(byHand, 9);
  }, 120_000);

  it('keeps the value and unit as sent beside the canonical ones, and flags what it cannot trust', async () => {
    const rows = await readParquet((await release('south')).files);
    const first = rows.find((lake) => lake.value_as_sent === 4.5 && lake.unit_as_sent === 'mmol/L');
    expect(first).toMatchObject({ unit: 'mg/dL', value_flag: null });
    expect(Number(first?.value)).toBeCloseTo(4.5 * mgPerDlPerMmolPerL, 9);
    const odd = rows.find((lake) => lake.unit_as_sent === 'mg/kg');
    expect(odd).toMatchObject({
      value: null,
      value_as_sent: 7,
      unit: 'mg/dL',
      value_flag: 'unit_unconvertible',
    });
    const heavy = rows.find((lake) => lake.value_as_sent === 2000);
    expect(heavy).toMatchObject({ value: 2000, unit: 'kg', value_flag: 'implausible' });
    const pounds = rows.find((lake) => lake.unit_as_sent === '[lb_av]');
    expect(Number(pounds?.value)).toBeCloseTo(150 * 0.45359237, 9);
  });

  it('counts unconvertible units and implausible values per code in the quality report', async () => {
    const { quality } = await release('south');
    const byCode = new Map(quality.codes.map((code) => [code.code, code]));
    expect(byCode.get(glucose)).toMatchObject({ unit: 'mg/dL', unconvertible: 1, implausible: 0 });
    expect(byCode.get('29463-7')).toMatchObject({ unit: 'kg', unconvertible: 0, implausible: 1 });
    expect(quality.unconvertibleUnits).toEqual([{ code: glucose, unit: 'mg/kg', values: 1 }]);
    const { quality: northQuality } = await release('north');
    expect(northQuality.unconvertibleUnits).toEqual([]);
  });
});
