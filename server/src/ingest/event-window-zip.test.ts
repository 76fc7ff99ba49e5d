import { readFile } from 'node:fs/promises';
import type { QualityReport } from '@medlake/shared';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestPlatform, type TestPlatform } from '../../test/helper.ts';
import {
  contractFile,
  ingest,
  prepareDataset,
  syntheaHeader,
  syntheaRow,
} from '../../test/ingest-helpers.ts';
import { readParquet } from '../../test/parquet.ts';
import { testSparkUrl } from '../../test/spark.ts';
import { releasesRepository } from '../catalog/releases-repository.ts';
import { saveDataset } from '../use-cases/manage-datasets.ts';

/**
 * An upload for 2021-03 under a contract whose window is that month and the one before, whose
 * ZIP codes are five-digit and which rejects implausible values: a result of January is
 * rejected, one of February kept, a ZIP that lost its leading zero is padded back, and a weight
 * no one has is rejected and counted for its code, on DuckDB and Spark alike.
 */

function row(index: number, date: string, zip: string, weight = 70): string {
  return syntheaRow({
    patient: `p-${index}`,
    index,
    city: 'Boston',
    zip,
    date,
    category: 'vital-signs',
    code: '29463-7',
    description: 'Body Weight',
    value: weight,
    unit: 'kg',
  });
}

const upload = [
  syntheaHeader,
  row(1, '2021-03-02', '02134'),
  row(2, '2021-03-03', '2134'),
  row(3, '2021-02-27', '2134-1234'),
  row(4, '2021-01-31', '02134'),
  row(5, '2021-03-04', '213'),
  // A weight no one has, which this contract rejects.
  row(6, '2021-03-05', '02134', 2000),
].join('\n');

describe.each(['duckdb', 'spark'] as const)('event window and ZIP codes on %s', (engine) => {
  let platform: TestPlatform;

  beforeAll(async () => {
    platform = await createTestPlatform(
      'pglite',
      engine === 'spark' ? { MEDLAKE_ENGINE: 'spark', SPARK_CONNECT_URL: testSparkUrl() } : {},
    );
    await prepareDataset(platform, 'synthea-observations');
    const contract = JSON.parse(await readFile(contractFile('synthea-observations'), 'utf8'));
    await saveDataset(
      platform,
      {
        ...contract,
        maxRejectedRows: 5,
        eventWindow: { monthsBack: 1, outside: 'reject_row' },
        columns: contract.columns.map((column: { name: string }) =>
          column.name === 'value'
            ? { ...column, canonicalUnits: { onImplausible: 'reject_row' } }
            : column,
        ),
      },
      { replace: true },
    );
    const result = await ingest(platform, { text: upload, month: '2021-03' });
    expect(result.status).toBe('published');
  }, 240_000);

  afterAll(async () => {
    await platform?.dispose();
  });

  it('rejects the row dated before the window and reports it with its line', async () => {
    const repository = releasesRepository(platform.catalog.db);
    const [listed] = await repository.list();
    const release = listed && (await repository.get(listed.id));
    const quality = release!.quality as QualityReport;
    expect(quality.rows).toBe(4);
    expect(quality.rejectedByReason).toEqual({ event_outside_window: 1, implausible_value: 1 });
    expect(quality.codes.find((code) => code.code === '29463-7')).toMatchObject({
      implausible: 1,
      unconvertible: 0,
    });
    expect(quality.rejectedSamples[0]).toMatchObject({ code: 'event_outside_window', line: 5 });
    expect(quality.eventsOutsideWindow).toBe(1);
    // February is inside the window but not the month.
    expect(quality.eventsOutsideMonth).toBe(2);
    expect(quality.zipCodes).toEqual({ padded: 2, emptied: 1 });

    const lake = await readParquet(release!.files.map((key) => platform.store.locate(key)));
    const zips = lake.map((lakeRow) => lakeRow.zip).sort();
    // 021 is a populous 3-digit area, kept; "213" is no ZIP code and is stored empty.
    expect(zips).toEqual(['021', '021', '021', null]);
  });
});
