import { createHash } from 'node:crypto';
import type { DatasetContractInput } from '@medlake/shared';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestPlatform, testActor, type TestPlatform } from '../../test/helper.ts';
import { ingest } from '../../test/ingest-helpers.ts';
import { readParquetObjects } from '../../test/parquet.ts';
import { releasesRepository } from '../catalog/releases-repository.ts';
import { addHospital, saveDataset } from '../use-cases/manage-datasets.ts';
import { openConfiguredVaultClient } from '../vault/configured-vault.ts';
import { deployments } from '../../test/deployments.ts';
import { lineOfRecord } from './ingest-rules.ts';

const header = 'mrn,name,address,birth,visit,seen_at,zip,code,result,note';

function contract(
  datePolicy: DatasetContractInput['datePolicy'],
  name: string,
): DatasetContractInput {
  return {
    name,
    title: 'Transformations',
    datePolicy,
    maxRejectedRows: 10,
    columns: [
      { name: 'mrn', role: 'patient_id' },
      { name: 'name', role: 'direct_identifier', identifies: 'name' },
      { name: 'address', role: 'direct_identifier', identifies: 'address' },
      { name: 'birth', role: 'birth_date' },
      {
        name: 'visit',
        role: 'direct_identifier',
        action: 'pseudonymize',
        identifies: 'record_number',
      },
      { name: 'seen_at', role: 'event_date', type: 'timestamp' },
      { name: 'zip', role: 'zip' },
      { name: 'code', role: 'code', required: true },
      { name: 'result', role: 'measure', allowText: true },
      { name: 'note', role: 'free_text', allowed: true },
    ],
  };
}

describe.each(deployments)('de-identification on %s', (_, { engineEnv, storage }) => {
  let platform: TestPlatform;

  beforeAll(async () => {
    platform = await createTestPlatform('pglite', engineEnv(), { storage });
    await addHospital(platform, testActor, { id: 'h1', name: 'Hospital 1' });
    await saveDataset(platform, contract('shift', 'shifted'));
    await saveDataset(platform, contract('year', 'by-year'));
    await saveDataset(platform, contract('year_month', 'by-month'));
  });

  afterAll(async () => {
    await platform.dispose();
  });

  async function lakeRows(dataset: string, text: string, month = '2024-01') {
    const result = await ingest(platform, { text, dataset, hospital: 'h1', month });
    if (result.status !== 'published') throw new Error(JSON.stringify(result));
    const release = await releasesRepository(platform.catalog.db).get(result.releaseId);
    return {
      result,
      rows: await readParquetObjects(platform.store, release?.files ?? []),
    };
  }

  const lines = [
    header,
    'A1,Ada Lovelace,12 Elm St,1930-05-01,v1,2024-01-05T08:00:00Z,03601,2345-7,101,',
    'A1,Ada Lovelace,12 Elm St,1930-05-01,v1,2024-01-15T08:00:00Z,03601,2345-7,99,fasting',
    'B2,Bo Chen,9 Oak Rd,1980-06-30,v2,2024-01-15T09:30:00Z,12345,72166-2,Never smoker,',
    'B2,Bo Chen,9 Oak Rd,1980-06-30,v3,2024-01-20T09:30:00Z,1234,72166-2,lives at 9 Oak Rd,',
    'B2,Bo Chen,9 Oak Rd,1980-06-30,v3,2024-01-21T09:30:00Z,12345,2345-7,88,SSN 123-45-6789 on file',
    'B2,Bo Chen,9 Oak Rd,1980-06-30,v3,2024-01-22T09:30:00Z,12345,2345-7,87,ask Ada about it',
  ].join('\n');

  it('generalises ages over 89, keeps birth years below, and truncates ZIPs with Safe Harbor', async () => {
    const { rows } = await lakeRows('by-year', lines);
    const ada = rows.filter((row) => row.code === '2345-7' && row.age === 90);
    expect(ada).toHaveLength(2);
    expect(ada.every((row) => row.birth_year === null)).toBe(true);
    // The lake keeps the rows, not the file's order of them.
    const bo = rows.find((row) => row.code === '72166-2' && row.result_text === 'Never smoker');
    expect(bo).toMatchObject({ age: 43, birth_year: 1980, zip: '123' });
    expect(ada[0]?.zip).toBe('000');
    expect(
      rows.find((row) => row.result_text === null && row.code === '72166-2' && row.zip === null),
    ).toBeDefined();
  });

  it('keeps no identifier column, and pseudonymizes linkage ids consistently', async () => {
    const { rows } = await lakeRows('by-year', lines, '2024-02');
    const columns = Object.keys(rows[0] ?? {});
    expect(columns).not.toContain('mrn');
    expect(columns).not.toContain('name');
    expect(columns).not.toContain('address');
    expect(columns).not.toContain('birth');
    const visits = rows.map((row) => row.visit as string);
    expect(visits.every((visit) => /^vis_[0-9a-f]{24}$/.test(visit))).toBe(true);
    expect(new Set(visits).size).toBe(3);
    expect(new Set(rows.map((row) => row.patient)).size).toBe(2);
  });

  it('hashes a linkage id with the vault key alike whether its values recur or not', async () => {
    const vault = await openConfiguredVaultClient(platform.env);
    const key = await vault.linkageKey().finally(() => vault.close());
    const hashOf = (visit: string) =>
      `vis_${createHash('sha256').update(`${key}|hospital:h1|visit|${visit}`).digest('hex').slice(0, 24)}`;
    // The rows kept, told apart by their result: 101 and 99 (v1), Never smoker (v2), and the
    // text emptied as an identifier (v3). First with visits that recur over rows, then with a
    // visit of its own per row.
    const resultOf = (row: Record<string, unknown>) =>
      String(row.result ?? row.result_text ?? 'emptied');
    const recurring = { '101': 'v1', '99': 'v1', 'Never smoker': 'v2', emptied: 'v3' };
    const distinct = lines
      .split('\n')
      .map((line, index) => (index === 0 ? line : line.replace(/,v\d,/, `,w${index},`)))
      .join('\n');
    const own = { '101': 'w1', '99': 'w2', 'Never smoker': 'w3', emptied: 'w4' };
    for (const [text, visits] of [
      [lines, recurring],
      [distinct, own],
    ] as const) {
      const { rows } = await lakeRows('by-year', text, '2024-03');
      expect(Object.fromEntries(rows.map((row) => [resultOf(row), row.visit]))).toEqual(
        Object.fromEntries(
          Object.entries(visits).map(([result, visit]) => [result, hashOf(visit)]),
        ),
      );
    }
  });

  it('rejects rows whose free text holds an identifier, and empties text results that do', async () => {
    const { result, rows } = await lakeRows('by-month', lines);
    expect(result.rejectedRows).toBe(2);
    const reasons = result.quality.rejectedSamples.map((problem) => [
      problem.line,
      problem.message,
    ]);
    expect(reasons).toEqual([
      [6, 'note looks like it holds a social security number'],
      [7, 'note holds a name or place of a patient in this upload'],
    ]);
    expect(result.quality.redactedValues).toBe(1);
    expect(rows).toHaveLength(4);
    expect(rows.map((row) => row.result_text)).not.toContain('lives at 9 Oak Rd');
    expect(rows.map((row) => row.result_text)).toContain('Never smoker');
    const dates = rows.map((row) => (row.seen_at as Date).toISOString());
    expect(new Set(dates)).toEqual(new Set(['2024-01-01T00:00:00.000Z']));
  });

  it('shifts dates by one offset per patient, the same in every upload, keeping intervals', async () => {
    const first = await lakeRows('shifted', lines);
    const again = await lakeRows('shifted', lines.replace('fasting', 'fasting sample'), '2024-01');
    const times = (
      rows: Array<Record<string, unknown>>,
      patientRows: (row: Record<string, unknown>) => boolean,
    ) =>
      rows
        .filter(patientRows)
        .map((row) => (row.seen_at as Date).getTime())
        .sort();
    const ada = (row: Record<string, unknown>) => row.age === 90;
    const [a1, a2] = times(first.rows, ada);
    expect(a2! - a1!).toBe(10 * 86_400_000);
    expect(a1).not.toBe(Date.UTC(2024, 0, 5, 8));
    expect(times(again.rows, ada)).toEqual(times(first.rows, ada));
  });
});

describe('lineOfRecord', () => {
  it('counts the header and every rejected line before the record', () => {
    expect(lineOfRecord(0, [])).toBe(2);
    expect(lineOfRecord(0, [3])).toBe(2);
    expect(lineOfRecord(1, [3])).toBe(4);
    expect(lineOfRecord(1, [2, 3])).toBe(5);
    expect(lineOfRecord(5, [2, 10])).toBe(8);
  });
});
