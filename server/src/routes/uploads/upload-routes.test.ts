import { createReadStream } from 'node:fs';
import http from 'node:http';
import { errorBodySchema } from '@medlake/shared';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { userWithToken } from '../../../test/api-helpers.ts';
import { createTestApp, createTestPlatform, type TestPlatform } from '../../../test/helper.ts';
import {
  fixtureLines,
  prepareDataset,
  synthea,
  stewardWithToken,
} from '../../../test/ingest-helpers.ts';
import type { App } from '../../app.ts';
import { jobsRepository } from '../../catalog/jobs-repository.ts';
import { releasesRepository } from '../../catalog/releases-repository.ts';

describe('POST /api/uploads', () => {
  let platform: TestPlatform;
  let app: App;
  let token: string;
  let otherToken: string;
  /** POSTs a CSV to the upload API with the given query string. */
  const upload = (query: string, payload: string | NodeJS.ReadableStream) =>
    app.inject({
      method: 'POST',
      url: `/api/uploads?${query}`,
      headers: { 'content-type': 'text/csv', authorization: `Bearer ${token}` },
      payload,
    });

  beforeAll(async () => {
    platform = await createTestPlatform();
    await prepareDataset(platform, 'synthea-observations', ['synthea', 'elsewhere']);
    token = await stewardWithToken(platform, 'steward@example.org', 'synthea');
    otherToken = await stewardWithToken(platform, 'other-steward@example.org', 'elsewhere');
    app = await createTestApp(platform);
  });

  afterAll(async () => {
    await app.close();
    await platform.dispose();
  });

  it('takes uploads only from a signed-in steward', async () => {
    const anonymous = await app.inject({
      method: 'POST',
      url: '/api/uploads?dataset=synthea-observations&hospital=synthea&month=2020-12',
      headers: { 'content-type': 'text/csv' },
      payload: 'a,b\n',
    });
    expect(anonymous.statusCode).toBe(401);
    const researcher = (await userWithToken(platform, 'res@example.org', { name: 'R' })).token;
    const refused = await app.inject({
      method: 'POST',
      url: '/api/uploads?dataset=synthea-observations&hospital=synthea&month=2020-12',
      headers: { 'content-type': 'text/csv', authorization: `Bearer ${researcher}` },
      payload: 'a,b\n',
    });
    expect(refused.statusCode).toBe(403);
    expect(await releasesRepository(platform.catalog.db).list()).toEqual([]);
  });

  it('streams a CSV in and answers 201 with the published release and its quality report', async () => {
    const response = await upload(
      'dataset=synthea-observations&hospital=synthea&month=2020-12&fileName=dec.csv',
      createReadStream(synthea('2020-12')),
    );
    expect(response.statusCode).toBe(201);
    const body = response.json<{
      status: string;
      releaseId: string;
      rows: number;
      quality: { patients: number };
    }>();
    expect(body).toMatchObject({ status: 'published', rows: 1052 });
    expect((await releasesRepository(platform.catalog.db).get(body.releaseId))?.current).toBe(true);
  });

  it('answers 200 for an identical re-upload', async () => {
    const response = await upload(
      'dataset=synthea-observations&hospital=synthea&month=2020-12',
      createReadStream(synthea('2020-12')),
    );
    expect(response.statusCode).toBe(200);
    expect(response.json()).toMatchObject({ status: 'unchanged' });
  });

  it('answers 422 with the problems, by line and column, for a bad file', async () => {
    const { header, rows } = await fixtureLines('2021-03');
    const response = await upload(
      'dataset=synthea-observations&hospital=synthea&month=2021-03&fileName=march.csv',
      [header, rows[0], `${rows[1]},extra`].join('\n'),
    );
    expect(response.statusCode).toBe(422);
    expect(response.json()).toMatchObject({
      status: 'rejected',
      fileName: 'march.csv',
      problems: [{ code: 'extra_fields', line: 3 }],
    });
  });

  it('answers 400 for a bad month and 404 for an unknown dataset', async () => {
    const badMonth = await upload(
      'dataset=synthea-observations&hospital=synthea&month=March',
      'a,b\n1,2\n',
    );
    expect(badMonth.statusCode).toBe(400);
    expect(errorBodySchema.parse(badMonth.json()).error.details?.[0]?.path).toBe('/month');

    const unknown = await upload('dataset=nope&hospital=synthea&month=2021-03', 'a,b\n1,2\n');
    expect(unknown.statusCode).toBe(404);
    expect(errorBodySchema.parse(unknown.json()).error.code).toBe('dataset_not_found');
  });

  it('publishes nothing and keeps no file when the client drops the connection mid-upload', async () => {
    const listening = await createTestApp(platform);
    await listening.listen({ port: 0, host: '127.0.0.1' });
    try {
      const address = listening.server.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      const { header, rows } = await fixtureLines('2021-03');
      const request = http.request({
        host: '127.0.0.1',
        port,
        method: 'POST',
        path: '/api/uploads?dataset=synthea-observations&hospital=synthea&month=2021-03',
        headers: {
          'content-type': 'text/csv',
          'content-length': '10000000',
          authorization: `Bearer ${token}`,
        },
      });
      request.on('error', () => undefined);
      request.write([header, ...rows.slice(0, 50)].join('\n'));
      await new Promise((resolve) => setTimeout(resolve, 300));
      request.destroy();

      const jobs = jobsRepository(platform.catalog.db);
      await expect
        .poll(async () => (await jobs.listRunning('ingest')).length, { timeout: 10_000 })
        .toBe(0);
      const releases = await releasesRepository(platform.catalog.db).list();
      expect(releases.filter((release) => release.month === '2021-03')).toEqual([]);
      expect(await platform.store.list('landing/')).toEqual([]);
    } finally {
      await listening.close();
    }
  });

  it('keeps a hospital’s uploads and reports to its own stewards', async () => {
    const asOther = (method: 'GET' | 'POST', url: string, payload?: string) =>
      app.inject({
        method,
        url,
        headers: { 'content-type': 'text/csv', authorization: `Bearer ${otherToken}` },
        ...(payload === undefined ? {} : { payload }),
      });
    const refused = await asOther(
      'POST',
      '/api/uploads?dataset=synthea-observations&hospital=synthea&month=2019-01',
      'a,b\n',
    );
    expect(refused.statusCode).toBe(403);
    expect(refused.json()).toMatchObject({
      error: { message: expect.stringContaining('not a data steward of hospital synthea') },
    });

    const own = await app.inject({
      method: 'GET',
      url: '/api/v1/uploads',
      headers: { authorization: `Bearer ${token}` },
    });
    const { uploads, total } = own.json<{
      total: number;
      uploads: Array<{ id: string; hospital: string; status: string; result: unknown }>;
    }>();
    expect(total).toBeGreaterThanOrEqual(3);
    expect(uploads.every((item) => item.hospital === 'synthea')).toBe(true);
    const published = uploads.find(
      (item) => (item.result as { status?: string } | null)?.status === 'published',
    );
    const report = await app.inject({
      method: 'GET',
      url: `/api/v1/uploads/${published?.id}`,
      headers: { authorization: `Bearer ${token}` },
    });
    expect(report.statusCode).toBe(200);
    expect(report.json()).toMatchObject({ quality: { rows: 1052 } });

    expect((await asOther('GET', '/api/v1/uploads')).json()).toEqual({
      page: 1,
      pageSize: 25,
      total: 0,
      hospitals: ['elsewhere'],
      uploads: [],
    });
    expect((await asOther('GET', `/api/v1/uploads/${published?.id}`)).statusCode).toBe(403);

    const history = await app.inject({
      method: 'GET',
      url: '/api/v1/releases?hospital=synthea',
      headers: { authorization: `Bearer ${token}` },
    });
    expect(history.json()).toMatchObject({
      total: 1,
      releases: [{ month: '2020-12', rows: 1052, current: true }],
    });
    expect((await asOther('GET', '/api/v1/releases?hospital=synthea')).statusCode).toBe(403);
  });

  it('previews the first rows of a release de-identified, for its stewards only', async () => {
    const get = (url: string, bearer = token) =>
      app.inject({ method: 'GET', url, headers: { authorization: `Bearer ${bearer}` } });
    const { uploads } = (await get('/api/v1/uploads?pageSize=50')).json<{
      uploads: Array<{ id: string; status: string; result: { status?: string } | null }>;
    }>();
    const published = uploads.find((item) => item.result?.status === 'published');
    const rejected = uploads.find((item) => item.status === 'failed');

    const preview = await get(`/api/v1/uploads/${published?.id}/preview`);
    expect(preview.statusCode).toBe(200);
    const { rows } = preview.json<{ rows: Array<Record<string, unknown>> }>();
    expect(rows).toHaveLength(20);
    expect(Object.keys(rows[0]!)).toEqual(expect.arrayContaining(['patient', 'code', 'value']));
    // No name, SSN, address or MRN of the file reaches the preview: they are not lake columns,
    // and the patient id is a pseudonym.
    expect(Object.keys(rows[0]!)).not.toEqual(expect.arrayContaining(['first_name']));
    // Nor their pseudonyms: the steward knows these patients and must not learn their keys.
    expect(
      rows.every((row) => row.patient === '(pseudonym)' && row.encounter === '(pseudonym)'),
    ).toBe(true);
    const { header, rows: lines } = await fixtureLines('2020-12');
    const columns = header.split(',');
    const identifiers = lines.slice(0, 200).flatMap((line) => {
      const cells = line.split(',');
      return ['MRN', 'SSN', 'FIRST', 'LAST', 'ADDRESS'].map((name) => cells[columns.indexOf(name)]);
    });
    const shown = JSON.stringify(rows);
    expect(
      identifiers.filter((value) => value && value.length > 3 && shown.includes(value)),
    ).toEqual([]);

    expect((await get(`/api/v1/uploads/${published?.id}/preview`, otherToken)).statusCode).toBe(
      403,
    );
    expect((await get(`/api/v1/uploads/${rejected?.id}/preview`)).statusCode).toBe(409);
    const audited = await platform.audit.search(
      { action: 'release.preview' },
      { page: 1, pageSize: 5 },
    );
    expect(audited.total).toBe(1);
  });

  it('lists every problem of an upload as CSV, past the first 100 its report holds, to its stewards only', async () => {
    const { header, rows } = await fixtureLines('2021-03');
    const code = header.split(',').indexOf('CODE');
    const withoutCode = (row: string) =>
      row
        .split(',')
        .map((cell, index) => (index === code ? '' : cell))
        .join(',');
    // Line 2 is good; lines 3 to 152 have a field too many, and 153 to 202 no code.
    const lines = [
      header,
      rows[0],
      ...rows.slice(1, 151).map((row) => `${row},extra`),
      ...rows.slice(151, 201).map(withoutCode),
    ];
    const response = await upload(
      'dataset=synthea-observations&hospital=synthea&month=2021-05&fileName=May%20%C3%BC.csv',
      lines.join('\n'),
    );
    expect(response.statusCode).toBe(422);
    const rejected = response.json<{ jobId: string; problems: unknown[]; problemCount: number }>();
    expect(rejected.problems).toHaveLength(100);
    expect(rejected.problemCount).toBe(200);

    const get = (bearer: string) =>
      app.inject({
        method: 'GET',
        url: `/api/v1/uploads/${rejected.jobId}/problems`,
        headers: { authorization: `Bearer ${bearer}` },
      });
    const csv = await get(token);
    expect(csv.statusCode).toBe(200);
    expect(csv.headers['content-type']).toBe('text/csv; charset=utf-8');
    expect(csv.headers['content-disposition']).toBe(
      `attachment; filename="May _-problems.csv"; filename*=UTF-8''May%20%C3%BC-problems.csv`,
    );
    const [first, ...problems] = csv.body.trimEnd().split('\n');
    expect(first).toBe('line,column,header,problem,code');
    expect(problems.map((line) => Number(line.split(',')[0]))).toEqual(
      Array.from({ length: 200 }, (_, index) => index + 3),
    );
    // In words, with the code beside them for scripts.
    expect(problems[0]).toMatch(/^3,.*more fields than the header.*,extra_fields$/i);
    expect(problems[199]).toMatch(new RegExp(`^202,${code + 1},CODE,.+,missing_value$`));

    expect((await get(otherToken)).statusCode).toBe(403);
    const audited = await platform.audit.search(
      { action: 'upload.problems' },
      { page: 1, pageSize: 5 },
    );
    expect(audited.total).toBe(1);
    expect(audited.entries[0]?.target).toBe(`upload:${rejected.jobId}`);
  });
});
