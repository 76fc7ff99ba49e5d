import { readFile } from 'node:fs/promises';
import type { UploadSessionView } from '@medlake/shared';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestApp, createTestPlatform, type TestPlatform } from '../../../test/helper.ts';
import { prepareDataset, synthea, stewardWithToken } from '../../../test/ingest-helpers.ts';
import type { App } from '../../app.ts';
import { releasesRepository } from '../../catalog/releases-repository.ts';
import { uploadSessionsRepository } from '../../catalog/upload-sessions-repository.ts';
import { expireUploadSessions } from '../../use-cases/uploads/upload-sessions.ts';

const mebibyte = 1024 * 1024;

describe('uploads in parts, on the local store', () => {
  let platform: TestPlatform;
  let app: App;
  let file: Buffer;
  const tokens: Record<'steward' | 'other', string> = {} as never;
  /** Every part the client sent, by number, in order. */
  const sent: number[] = [];

  const call = (
    who: keyof typeof tokens,
    method: 'GET' | 'POST' | 'PUT' | 'DELETE',
    url: string,
    payload?: object | Buffer,
  ) =>
    app.inject({
      method,
      url,
      headers: {
        authorization: `Bearer ${tokens[who]}`,
        ...(Buffer.isBuffer(payload) ? { 'content-type': 'application/octet-stream' } : {}),
      },
      ...(payload === undefined ? {} : { payload }),
    });

  /** Asks where part n goes, and sends it there. */
  const sendPart = async (session: string, partNumber: number, bytes: Buffer) => {
    const target = await call(
      'steward',
      'GET',
      `/api/v1/upload-sessions/${session}/parts/${partNumber}/target`,
    );
    expect(target.statusCode).toBe(200);
    const { url, method } = target.json() as { url: string; method: 'PUT' };
    // The local store takes parts through the server, at the URL the target names.
    expect(url).toBe(`/api/v1/upload-sessions/${session}/parts/${partNumber}`);
    const put = await call('steward', method, url, bytes);
    expect(put.statusCode).toBe(204);
    sent.push(partNumber);
  };

  /** Starts a session for the steward's hospital; `bytes` small unless given. */
  const startSession = async (month: string, fields: object = {}) => {
    const response = await call('steward', 'POST', '/api/v1/upload-sessions', {
      dataset: 'synthea-observations',
      hospital: 'synthea',
      month,
      bytes: 100,
      ...fields,
    });
    expect(response.statusCode).toBe(201);
    return response.json() as UploadSessionView;
  };

  /** The details of the audit entries of an action, oldest first. */
  const audited = async (action: string) =>
    (
      await platform.catalog.db
        .selectFrom('audit_log')
        .select('details')
        .where('action', '=', action)
        .orderBy('seq')
        .execute()
    ).map((row) => row.details as Record<string, unknown>);

  beforeAll(async () => {
    platform = await createTestPlatform();
    await prepareDataset(platform, 'synthea-observations', ['synthea', 'elsewhere']);
    tokens.steward = await stewardWithToken(platform, 'steward@example.org', 'synthea');
    tokens.other = await stewardWithToken(platform, 'other@example.org', 'elsewhere');
    app = await createTestApp(platform);
    file = await readFile(synthea('all'));
  });

  afterAll(async () => {
    await app?.close();
    await platform?.dispose();
  });

  it('resumes after a dropped connection without sending finished parts again, then ingests', async () => {
    const session = await startSession('2020-12', {
      fileName: 'hospital-export-all.csv',
      bytes: file.length,
      partBytes: 5 * mebibyte,
    });
    expect(await audited('upload.start')).toEqual([
      { hospital: 'synthea', month: '2020-12', session: session.id, bytes: file.length },
    ]);
    expect(session).toMatchObject({ status: 'open', parts: 2, arrived: [] });
    const part = (n: number) => file.subarray((n - 1) * 5 * mebibyte, n * 5 * mebibyte);

    await sendPart(session.id, 1, part(1));
    // Part 2 breaks off half way: it arrives short.
    await sendPart(session.id, 2, part(2).subarray(0, 1000));
    const early = await call('steward', 'POST', `/api/v1/upload-sessions/${session.id}/complete`);
    expect(early.statusCode).toBe(409);
    expect(early.json().error.message).toMatch(/part 2 is missing or of the wrong length/);

    // The client comes back, asks which parts arrived whole, and sends only the others.
    const resumed = (await call('steward', 'GET', `/api/v1/upload-sessions/${session.id}`)).json();
    expect(resumed.arrived).toEqual([1]);
    await sendPart(session.id, 2, part(2));
    expect(sent).toEqual([1, 2, 2]);

    const completed = await call(
      'steward',
      'POST',
      `/api/v1/upload-sessions/${session.id}/complete`,
    );
    expect(completed.statusCode).toBe(201);
    const result = completed.json();
    expect(result).toMatchObject({ status: 'published' });
    expect(result.rows).toBeGreaterThan(20_000);
    expect(await releasesRepository(platform.catalog.db).list()).toHaveLength(1);
    // Nothing of the upload is left in the landing zone.
    expect(await platform.store.list('landing/')).toEqual([]);

    const after = (await call('steward', 'GET', `/api/v1/upload-sessions/${session.id}`)).json();
    expect(after).toMatchObject({ status: 'completed', jobId: result.jobId });
    expect(
      (await call('steward', 'POST', `/api/v1/upload-sessions/${session.id}/complete`)).statusCode,
    ).toBe(409);
  });

  it('keeps a session to the steward who started it, and its hospital to its stewards', async () => {
    const forOther = await call('steward', 'POST', '/api/v1/upload-sessions', {
      dataset: 'synthea-observations',
      hospital: 'elsewhere',
      month: '2020-12',
      bytes: 100,
    });
    expect(forOther.statusCode).toBe(403);
    const mine = await startSession('2021-01');
    for (const [method, url] of [
      ['GET', `/api/v1/upload-sessions/${mine.id}`],
      ['GET', `/api/v1/upload-sessions/${mine.id}/parts/1/target`],
      ['PUT', `/api/v1/upload-sessions/${mine.id}/parts/1`],
      ['POST', `/api/v1/upload-sessions/${mine.id}/complete`],
      ['DELETE', `/api/v1/upload-sessions/${mine.id}`],
    ] as const) {
      const response = await call(
        'other',
        method,
        url,
        method === 'PUT' ? Buffer.from('x') : undefined,
      );
      expect(response.statusCode, `${method} ${url}`).toBe(404);
    }
    const outOfRange = await call(
      'steward',
      'GET',
      `/api/v1/upload-sessions/${mine.id}/parts/2/target`,
    );
    expect(outOfRange.statusCode).toBe(400);
  });

  it('cancels a session and drops what arrived', async () => {
    const session = await startSession('2021-02');
    await sendPart(session.id, 1, Buffer.alloc(100, 65));
    expect(
      (await call('steward', 'DELETE', `/api/v1/upload-sessions/${session.id}`)).statusCode,
    ).toBe(204);
    const after = (await call('steward', 'GET', `/api/v1/upload-sessions/${session.id}`)).json();
    expect(after).toMatchObject({ status: 'aborted', arrived: [] });
    expect(
      (await call('steward', 'POST', `/api/v1/upload-sessions/${session.id}/complete`)).statusCode,
    ).toBe(409);
    expect(await audited('upload.cancel')).toContainEqual({
      session: session.id,
      reason: 'cancelled by the uploader',
    });
  });

  it('drops an upload left unfinished for a week, parts and all', async () => {
    const session = await startSession('2021-04');
    await sendPart(session.id, 1, Buffer.alloc(100, 66));
    expect(await expireUploadSessions(platform)).toBe(0);
    const eightDaysOn = new Date(Date.now() + 8 * 24 * 60 * 60 * 1000);
    // This one, and any other left open by the tests above.
    expect(await expireUploadSessions(platform, eightDaysOn)).toBeGreaterThanOrEqual(1);
    const after = (await call('steward', 'GET', `/api/v1/upload-sessions/${session.id}`)).json();
    expect(after).toMatchObject({ status: 'aborted', arrived: [] });
    const stored = await uploadSessionsRepository(platform.catalog.db).get(session.id);
    await expect(
      platform.store.parts.list(stored!.objectKey, stored!.storeUploadId),
    ).rejects.toMatchObject({ code: 'upload_not_found' });
  });
});
