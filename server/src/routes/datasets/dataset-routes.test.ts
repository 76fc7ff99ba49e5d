import { DuckDBInstance } from '@duckdb/node-api';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { userWithToken } from '../../../test/api-helpers.ts';
import { createTestApp, createTestPlatform, type TestPlatform } from '../../../test/helper.ts';
import { ingest, prepareDataset, synthea } from '../../../test/ingest-helpers.ts';
import type { App } from '../../app.ts';

type Dictionary = {
  hospitals: string[];
  months: string[];
  codes: Array<{
    code: string;
    label: string | null;
    unit: string | null;
    rows: number | string;
    patients: number | string;
  }>;
  rules: Array<{ rule: string; description: string }>;
  deidentification?: { standard: string };
};

describe('/api/v1/datasets', () => {
  let platform: TestPlatform;
  let app: App;
  const tokens: Record<string, string> = {};
  const get = (user: string, url: string) =>
    app.inject({ method: 'GET', url, headers: { authorization: `Bearer ${tokens[user]}` } });

  beforeAll(async () => {
    platform = await createTestPlatform();
    await prepareDataset(platform, 'synthea-observations');
    await prepareDataset(platform, 'lab-results', []);
    await ingest(platform, { file: synthea('all'), month: '2021-06' });
    for (const [email, level] of [
      ['agg@example.org', 'aggregate'],
      ['row@example.org', 'row'],
      ['none@example.org', undefined],
    ] as const) {
      const grant = level ? { datasetId: 'synthea-observations', level } : undefined;
      tokens[email] = (await userWithToken(platform, email, { grant })).token;
    }
    app = await createTestApp(platform);
  }, 60_000);

  afterAll(async () => {
    await app.close();
    await platform.dispose();
  });

  it('lists every dataset with the user’s access to it', async () => {
    const response = await get('agg@example.org', '/api/v1/datasets');
    expect(response.json()).toEqual({
      datasets: [
        expect.objectContaining({ id: 'lab-results', access: null }),
        expect.objectContaining({ id: 'synthea-observations', access: 'aggregate' }),
      ],
    });
  });

  it('gives exact counts per code to a row-level user, matching the source file', async () => {
    const dictionary = (
      await get('row@example.org', '/api/v1/datasets/synthea-observations/dictionary')
    ).json<Dictionary>();
    expect(dictionary.hospitals).toEqual(['synthea']);
    expect(dictionary.months).toEqual(['2021-06']);
    const instance = await DuckDBInstance.create(':memory:');
    const connection = await instance.connect();
    const expected = (
      await connection.runAndReadAll(
        `SELECT CODE AS code, count(*)::INTEGER AS rows, count(DISTINCT MRN)::INTEGER AS patients
         FROM read_csv('${synthea('all')}', all_varchar = true) GROUP BY 1 ORDER BY 1`,
      )
    ).getRowObjectsJson();
    connection.closeSync();
    instance.closeSync();
    expect(dictionary.codes.map(({ code, rows, patients }) => ({ code, rows, patients }))).toEqual(
      expected,
    );
    expect(dictionary.codes.find((entry) => entry.code === '8302-2')?.label).toBe('Body Height');
    // The unit of the canonical value, which queries aggregate.
    expect(dictionary.codes.find((entry) => entry.code === '2345-7')?.unit).toBe('mg/dL');
    expect(dictionary.deidentification).toMatchObject({
      standard: 'limited_data_set',
      identifiers: expect.arrayContaining([
        expect.objectContaining({ letter: 'C', meetsSafeHarbor: false }),
      ]),
    });
  });

  it('lists only codes of 11 patients or more to an aggregate user, without counts, and refuses users without access', async () => {
    const full = (
      await get('row@example.org', '/api/v1/datasets/synthea-observations/dictionary')
    ).json<Dictionary>();
    const dictionary = (
      await get('agg@example.org', '/api/v1/datasets/synthea-observations/dictionary')
    ).json<Dictionary>();
    const rare = full.codes
      .filter((entry) => Number(entry.patients) < 11)
      .map((entry) => entry.code);
    expect(rare.length).toBeGreaterThan(0);
    expect(dictionary.codes.map((entry) => entry.code)).toEqual(
      full.codes.map((entry) => entry.code).filter((code) => !rare.includes(code)),
    );
    // The release ledger, on by default, also keeps the counts per code from aggregate users.
    for (const entry of dictionary.codes) {
      expect(entry).toMatchObject({ rows: 'withheld', patients: 'withheld' });
    }
    expect(dictionary.rules.map((rule) => rule.description).join(' ')).toContain(
      `${rare.length} codes have fewer than 11 patients and are not listed`,
    );
    expect(
      (await get('none@example.org', '/api/v1/datasets/synthea-observations/dictionary'))
        .statusCode,
    ).toBe(403);
  });
});
