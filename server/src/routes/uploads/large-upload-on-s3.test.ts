import { createReadStream, createWriteStream } from 'node:fs';
import { mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { once } from 'node:events';
import type { UploadSessionView } from '@medlake/shared';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestApp, createTestPlatform, type TestPlatform } from '../../../test/helper.ts';
import { prepareDataset, synthea, stewardWithToken } from '../../../test/ingest-helpers.ts';
import { researcherWithAccess, runQuery } from '../../../test/query-helpers.ts';
import type { App } from '../../app.ts';

const mebibyte = 1024 * 1024;
/** At least 2 GB, in parts of 64 MiB. */
const targetBytes = 2_000_000_000;
const partBytes = 64 * mebibyte;

/**
 * A 2 GB monthly file sent the way a browser or the CLI sends a large one on S3: each part
 * straight to the bucket through a presigned URL, never through the medlake server. The
 * connection drops half way; the client asks which parts arrived, sends only the others, and
 * the file is completed and ingested.
 */
describe('a 2 GB upload in parts, straight to S3', () => {
  let platform: TestPlatform;
  let app: App;
  let scratch: string;
  let file: string;
  let fileBytes: number;
  let rowsInFile: number;
  let token: string;

  const call = (method: 'GET' | 'POST', url: string, payload?: object) =>
    app.inject({
      method,
      url,
      headers: { authorization: `Bearer ${token}` },
      ...(payload ? { payload } : {}),
    });

  /** Where part n goes: a presigned URL of the bucket. */
  const targetOf = async (session: string, partNumber: number) => {
    const response = await call(
      'GET',
      `/api/v1/upload-sessions/${session}/parts/${partNumber}/target`,
    );
    expect(response.statusCode).toBe(200);
    return response.json() as { url: string; method: 'PUT' };
  };

  /**
   * PUTs part n's bytes to the URL; with `dropAfter`, the connection is cut after that many
   * bytes, as a lost network would.
   */
  const putPart = async (url: string, partNumber: number, dropAfter?: number) => {
    const start = (partNumber - 1) * partBytes;
    const length = Math.min(partBytes, fileBytes - start);
    const outgoing = request(url, { method: 'PUT', headers: { 'content-length': length } });
    const answered = once(outgoing, 'response').then(
      ([response]) => (response as { statusCode: number }).statusCode,
    );
    const body = createReadStream(file, {
      start,
      end: start + (dropAfter ?? length) - 1,
    });
    for await (const chunk of body) {
      if (!outgoing.write(chunk)) await once(outgoing, 'drain');
    }
    if (dropAfter !== undefined) {
      outgoing.destroy();
      await answered.catch(() => undefined);
      return undefined;
    }
    outgoing.end();
    return answered;
  };

  beforeAll(async () => {
    scratch = await mkdtemp(path.join(tmpdir(), 'medlake-2gb-'));
    // The Synthea export's rows, again and again, to 2 GB.
    const [header, ...rows] = (await readFile(synthea('all'), 'utf8')).trimEnd().split('\n');
    const block = `${rows.join('\n')}\n`;
    file = path.join(scratch, 'hospital-export-2gb.csv');
    const out = createWriteStream(file);
    out.write(`${header}\n`);
    let written = Buffer.byteLength(header!) + 1;
    rowsInFile = 0;
    while (written < targetBytes) {
      if (!out.write(block)) await once(out, 'drain');
      written += Buffer.byteLength(block);
      rowsInFile += rows.length;
    }
    out.end();
    await once(out, 'finish');
    fileBytes = (await stat(file)).size;

    platform = await createTestPlatform(
      'pglite',
      { MEDLAKE_INGEST_MEMORY: '2GB' },
      { storage: 's3' },
    );
    await prepareDataset(platform, 'synthea-observations');
    token = await stewardWithToken(platform, 'steward@example.org', 'synthea');
    app = await createTestApp(platform);
  }, 300_000);

  afterAll(async () => {
    await app?.close();
    await platform?.dispose();
    await rm(scratch, { recursive: true, force: true });
  });

  it('resumes after half its parts without sending them again, completes and is ingested', async () => {
    expect(fileBytes).toBeGreaterThanOrEqual(targetBytes);
    const started = await call('POST', '/api/v1/upload-sessions', {
      dataset: 'synthea-observations',
      hospital: 'synthea',
      month: '2021-06',
      fileName: 'hospital-export-2gb.csv',
      bytes: fileBytes,
      partBytes,
    });
    expect(started.statusCode).toBe(201);
    const session = started.json() as UploadSessionView;
    const parts = Math.ceil(fileBytes / partBytes);
    expect(session.parts).toBe(parts);
    const half = Math.floor(parts / 2);
    /** Every part the bucket accepted, by number, in the order sent. */
    const accepted: number[] = [];

    for (let partNumber = 1; partNumber <= half; partNumber++) {
      const { url } = await targetOf(session.id, partNumber);
      expect(new URL(url).searchParams.has('X-Amz-Signature')).toBe(true);
      expect(await putPart(url, partNumber)).toBe(200);
      accepted.push(partNumber);
    }
    // The connection drops in the middle of the next part.
    await putPart((await targetOf(session.id, half + 1)).url, half + 1, 8 * mebibyte);

    // The client comes back: it asks which parts arrived and sends only the others.
    const resumed = (await call('GET', `/api/v1/upload-sessions/${session.id}`)).json();
    expect(resumed.arrived).toEqual(accepted);
    for (let partNumber = 1; partNumber <= parts; partNumber++) {
      if (resumed.arrived.includes(partNumber)) continue;
      expect(await putPart((await targetOf(session.id, partNumber)).url, partNumber)).toBe(200);
      accepted.push(partNumber);
    }
    // Each part went into the bucket once.
    expect(accepted.toSorted((a, b) => a - b)).toEqual(
      Array.from({ length: parts }, (_, index) => index + 1),
    );

    const completed = await call('POST', `/api/v1/upload-sessions/${session.id}/complete`);
    expect(completed.statusCode).toBe(201);
    const result = completed.json();
    expect(result).toMatchObject({ status: 'published', rows: rowsInFile, rejectedRows: 0 });
    // Nothing of the upload is left in the landing zone, and the release is there to query.
    expect(await platform.store.list('landing/')).toEqual([]);
    const researcher = await researcherWithAccess(
      platform,
      'r@example.org',
      'synthea-observations',
      'aggregate',
    );
    const { rows } = await runQuery(platform, researcher, {
      dataset: 'synthea-observations',
      measures: [{ fn: 'count' }],
    });
    expect(rows[0]?.rows).toBe(rowsInFile);
  }, 1_800_000);
});
