import type { QueryJobView, ResultPage } from '@medlake/shared';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { tokensWithGrants, userWithToken } from '../../../test/api-helpers.ts';
import {
  createTestApp,
  createTestPlatform,
  testActor,
  type TestPlatform,
} from '../../../test/helper.ts';
import { fixtureLines, ingest, prepareDataset, synthea } from '../../../test/ingest-helpers.ts';
import type { App } from '../../app.ts';
import { grantsRepository } from '../../catalog/grants-repository.ts';
import { grantDatasetAccess } from '../../use-cases/manage-access.ts';
import { createLogger } from '../../logger.ts';
import { startQueryWorker, type QueryWorker } from '../../use-cases/queries/query-worker.ts';
import { forgetResultRows } from '../../query/result-cache.ts';

const byCode = {
  dataset: 'synthea-observations',
  groupBy: [{ column: 'code' }, { column: 'sex' }],
  measures: [{ fn: 'count' }, { fn: 'patients' }, { fn: 'mean', column: 'value' }],
};

describe('/api/v1/queries', () => {
  let platform: TestPlatform;
  let app: App;
  let worker: QueryWorker | undefined;
  const tokens: Record<string, string> = {};

  const call = (
    user: string | undefined,
    method: 'GET' | 'POST' | 'DELETE',
    url: string,
    payload?: unknown,
  ) =>
    app.inject({
      method,
      url,
      headers: user ? { authorization: `Bearer ${tokens[user]}` } : {},
      ...(payload === undefined ? {} : { payload: payload as object }),
    });

  /** Submits a query and waits for the worker to finish it. */
  async function finished(user: string, spec: unknown): Promise<QueryJobView> {
    const submitted = await call(user, 'POST', '/api/v1/queries', spec);
    expect(submitted.statusCode).toBe(202);
    const id = submitted.json<QueryJobView>().id;
    const job = (await call(user, 'GET', `/api/v1/queries/${id}?wait=20`)).json<QueryJobView>();
    if (['queued', 'running'].includes(job.status)) throw new Error('the query did not finish');
    return job;
  }

  beforeAll(async () => {
    platform = await createTestPlatform();
    await prepareDataset(platform, 'synthea-observations', ['synthea', 'evil']);
    await ingest(platform, { file: synthea('all'), month: '2021-06' });
    Object.assign(
      tokens,
      await tokensWithGrants(platform, 'synthea-observations', {
        'agg@example.org': 'aggregate',
        'row@example.org': 'row',
        'other@example.org': 'aggregate',
      }),
    );
    const none = 'none@example.org';
    tokens[none] = (await userWithToken(platform, none, { name: 'None' })).token;
    worker = startQueryWorker(platform, { logger: createLogger('silent'), pollMs: 50 });
    app = await createTestApp(platform);
  }, 60_000);

  afterAll(async () => {
    await app.close();
    await worker?.stop();
    await platform.dispose();
  });

  it('refuses a request without a valid token', async () => {
    expect((await call(undefined, 'GET', '/api/v1/queries')).statusCode).toBe(401);
    const forged = await app.inject({
      method: 'GET',
      url: '/api/v1/queries',
      headers: { authorization: 'Bearer mlk_not-a-real-token' },
    });
    expect(forged.statusCode).toBe(401);
    expect(forged.json()).toMatchObject({ error: { code: 'token_invalid' } });
  });

  it('runs a query as a job and serves its key points and sorted pages', async () => {
    const job = await finished('row@example.org', byCode);
    expect(job).toMatchObject({ status: 'succeeded', engine: 'duckdb', error: null });
    expect(job.releaseIds).toHaveLength(1);
    expect(job.summary?.matching).toEqual({ rows: 21_697, patients: 59 });
    expect(job.summary?.keyPoints[0]).toBe('59 patients and 21,697 rows match.');

    const firstPage = await call(
      'row@example.org',
      'GET',
      `/api/v1/queries/${job.id}/results?pageSize=5&sort=rows&direction=desc`,
    );
    expect(firstPage.statusCode).toBe(200);
    const page = firstPage.json<ResultPage>();
    expect(page.totalRows).toBe(job.summary?.rowCount);
    expect(page.rows).toHaveLength(5);
    const counts = page.rows.map((row) => row.rows as number);
    expect(counts).toEqual([...counts].sort((a, b) => b - a));

    const second = (
      await call(
        'row@example.org',
        'GET',
        `/api/v1/queries/${job.id}/results?page=2&pageSize=5&sort=rows&direction=desc`,
      )
    ).json<ResultPage>();
    expect(second.rows[0]?.rows as number).toBeLessThanOrEqual(counts.at(-1) ?? 0);
  });

  it('answers a submit that waits with the finished job and its first page', async () => {
    const response = await call('row@example.org', 'POST', '/api/v1/queries?wait=20', byCode);
    expect(response.statusCode).toBe(200);
    const job = response.json<QueryJobView>();
    expect(job.status).toBe('succeeded');
    expect(job.firstPage?.rows).toHaveLength(Math.min(100, job.summary?.rowCount ?? 0));
    const page = (
      await call('row@example.org', 'GET', `/api/v1/queries/${job.id}/results`)
    ).json<ResultPage>();
    expect(job.firstPage).toEqual(page);
  });

  it('answers a submit that waits with the job exactly as the catalog then holds it', async () => {
    // On the embedded catalog the answer is sent while the job's end is being written: what it
    // says must be what the catalog records, for either kind of user.
    for (const user of ['row@example.org', 'agg@example.org']) {
      const response = await call(user, 'POST', '/api/v1/queries?wait=20', byCode);
      expect(response.statusCode).toBe(200);
      const { firstPage, ...answered } = response.json<QueryJobView>();
      expect(answered.status).toBe('succeeded');
      expect(firstPage?.rows.length).toBeGreaterThan(0);
      const stored = (await call(user, 'GET', `/api/v1/queries/${answered.id}`)).json();
      expect(answered).toEqual(stored);
    }
  });

  it('names the cohort in the key points', async () => {
    const response = await call('agg@example.org', 'POST', '/api/v1/queries?wait=20', {
      dataset: 'synthea-observations',
      cohort: {
        match: 'any',
        criteria: [
          { where: { column: 'code', op: 'eq', value: '8302-2' } },
          { where: { column: 'code', op: 'eq', value: '29463-7' } },
        ],
      },
      measures: [{ fn: 'patients' }],
    });
    expect(response.json<QueryJobView>().summary?.keyPoints[0]).toMatch(
      /^[\d,<]+ patients of the cohort \(patients who met any of its 2 criteria\) and [\d,<]+ rows match\.$/,
    );
  });

  it('serves the same pages from memory as from the stored result', async () => {
    const job = await finished('agg@example.org', byCode);
    // In stored order: sorting on a column would leave ties (the suppressed groups) unordered.
    const url = `/api/v1/queries/${job.id}/results?pageSize=7&page=2`;
    const fromMemory = (await call('agg@example.org', 'GET', url)).json<ResultPage>();
    forgetResultRows(job.id);
    const fromFile = (await call('agg@example.org', 'GET', url)).json<ResultPage>();
    expect(fromMemory.rows).toHaveLength(7);
    expect(fromFile).toEqual(fromMemory);
  });

  it('never shows an aggregate user a count from 1 to 10', async () => {
    const job = await finished('agg@example.org', byCode);
    expect(job.status).toBe('succeeded');
    // Groups of fewer than 11 patients are left out, labels included.
    expect(job.summary?.withheldGroups).toBeGreaterThan(0);
    expect(job.summary?.rules.map((rule) => rule.rule)).toContain('small_cell');
    const all = (
      await call('agg@example.org', 'GET', `/api/v1/queries/${job.id}/results?pageSize=1000`)
    ).json<ResultPage>();
    expect(all.rows.length).toBe(job.summary?.rowCount);
    for (const row of all.rows) {
      expect(row.suppressed).toBe(false);
      expect(row.patients as number).toBeGreaterThanOrEqual(11);
    }
  });

  it('refuses row-level output and linkage columns with aggregate access', async () => {
    const rows = await call('agg@example.org', 'POST', '/api/v1/queries', {
      dataset: 'synthea-observations',
      select: ['code', 'value'],
    });
    expect(rows.statusCode).toBe(403);
    const linkage = await call('agg@example.org', 'POST', '/api/v1/queries', {
      dataset: 'synthea-observations',
      groupBy: [{ column: 'patient' }],
      measures: [{ fn: 'count' }],
    });
    expect(linkage.statusCode).toBe(403);
    expect(linkage.json()).toMatchObject({
      error: { details: [{ path: 'groupBy[0].column' }] },
    });
  });

  it('gives row-level users their rows', async () => {
    const job = await finished('row@example.org', {
      dataset: 'synthea-observations',
      select: ['patient', 'code', 'value'],
      where: { column: 'code', op: 'eq', value: '8302-2' },
      limit: 3,
    });
    const page = (
      await call('row@example.org', 'GET', `/api/v1/queries/${job.id}/results`)
    ).json<ResultPage>();
    expect(page.rows).toHaveLength(3);
    expect(page.rows[0]?.patient).toMatch(/^p_[0-9a-f]{20}$/);
  });

  it('answers 400 naming the field for an unknown column, a wrong type or an injection attempt, never with SQL', async () => {
    const bad = [
      [{ ...byCode, groupBy: [{ column: 'ssn' }] }, 'groupBy[0].column'],
      [{ ...byCode, where: { column: 'age', op: 'eq', value: 'forty' } }, 'where.value'],
      [{ ...byCode, where: { column: 'code; DROP TABLE users', op: 'eq', value: 'x' } }, 'where'],
      [{ ...byCode, measures: [{ fn: 'count', as: 'x" FROM y --' }] }, 'measures[0].as'],
      [{ ...byCode, dataset: "lab'--" }, 'dataset'],
      [{ ...byCode, where: { op: 'date_range', from: "2020-01-01' OR '1'='1" } }, 'where'],
      [{ ...byCode, limit: -1 }, 'limit'],
    ] as const;
    for (const [spec, path] of bad) {
      const response = await call('row@example.org', 'POST', '/api/v1/queries', spec);
      expect(response.statusCode, JSON.stringify(spec)).toBe(400);
      const body = response.json<{
        error: { message: string; details: Array<{ path: string }> };
      }>();
      const paths = body.error.details.map((detail) => detail.path);
      expect(
        paths.some((reported) => reported.startsWith(path)),
        paths.join(),
      ).toBe(true);
      expect(response.body).not.toMatch(/SELECT|read_parquet|GROUP BY|\$\d/);
    }
  });

  it('answers a deeply nested filter with a 400, not a crash', async () => {
    // Written out by hand: a JSON encoder would itself run out of stack on it.
    const depth = 100_000;
    const where = `${'{"not":'.repeat(depth)}{"column":"code","op":"eq","value":"x"}${'}'.repeat(depth)}`;
    const response = await app.inject({
      method: 'POST',
      url: '/api/v1/queries',
      headers: {
        authorization: `Bearer ${tokens['row@example.org']}`,
        'content-type': 'application/json',
      },
      payload: `{"dataset":"synthea-observations","measures":[{"fn":"count"}],"where":${where}}`,
    });
    expect(response.statusCode).toBe(400);
    expect(response.json()).toMatchObject({
      error: { message: expect.stringContaining('nested') },
    });
  });

  it('hides other users’ queries and refuses users without a grant', async () => {
    const job = await finished('agg@example.org', byCode);
    for (const path of [`/api/v1/queries/${job.id}`, `/api/v1/queries/${job.id}/results`]) {
      const response = await call('other@example.org', 'GET', path);
      expect(response.statusCode).toBe(404);
    }
    expect(
      (await call('other@example.org', 'DELETE', `/api/v1/queries/${job.id}`)).statusCode,
    ).toBe(404);
    const listed = (await call('other@example.org', 'GET', '/api/v1/queries')).json<{
      queries: QueryJobView[];
    }>();
    expect(listed.queries.map((query) => query.id)).not.toContain(job.id);
    expect((await call('none@example.org', 'POST', '/api/v1/queries', byCode)).statusCode).toBe(
      403,
    );
  });

  it('cancels a query that is still queued', async () => {
    await worker?.stop();
    worker = undefined;
    const submitted = (
      await call('row@example.org', 'POST', '/api/v1/queries', byCode)
    ).json<QueryJobView>();
    const cancelled = await call('row@example.org', 'DELETE', `/api/v1/queries/${submitted.id}`);
    expect(cancelled.json()).toMatchObject({ status: 'cancelled' });
    const results = await call('row@example.org', 'GET', `/api/v1/queries/${submitted.id}/results`);
    expect(results.statusCode).toBe(409);
    worker = startQueryWorker(platform, { logger: createLogger('silent'), pollMs: 50 });
  });

  it('answers 429 to a user with as many queries waiting as one may have, and takes more once one ends', async () => {
    await worker?.stop();
    worker = undefined;
    const limit = platform.env.MEDLAKE_QUERY_QUEUE_PER_USER;
    const submit = () => call('other@example.org', 'POST', '/api/v1/queries', byCode);
    const waiting: string[] = [];
    for (let i = 0; i < limit; i += 1) {
      const submitted = await submit();
      expect(submitted.statusCode).toBe(202);
      waiting.push(submitted.json<QueryJobView>().id);
    }
    const refused = await submit();
    expect(refused.statusCode).toBe(429);
    expect(refused.json().error).toMatchObject({
      code: 'queue_full',
      message: expect.stringContaining(`You have ${limit} queries queued or running`),
    });
    // Another user's queries are not held up by this one's.
    expect((await call('row@example.org', 'POST', '/api/v1/queries', byCode)).statusCode).toBe(202);

    await call('other@example.org', 'DELETE', `/api/v1/queries/${waiting.pop()}`);
    const accepted = await submit();
    expect(accepted.statusCode).toBe(202);
    waiting.push(accepted.json<QueryJobView>().id);
    for (const id of waiting) await call('other@example.org', 'DELETE', `/api/v1/queries/${id}`);
    worker = startQueryWorker(platform, { logger: createLogger('silent'), pollMs: 50 });
  });

  it('exports a disclosure-controlled CSV behind an expiring link bound to its user', async () => {
    const job = await finished('agg@example.org', byCode);
    const created = await call('agg@example.org', 'POST', `/api/v1/queries/${job.id}/exports`, {
      format: 'csv',
    });
    expect(created.statusCode).toBe(201);
    const link = created.json<{
      exportId: string;
      url: string;
      expiresAt: string;
      fileName: string;
    }>();
    const expiresIn = Date.parse(link.expiresAt) - Date.now();
    expect(expiresIn).toBeGreaterThan(14 * 60_000);
    expect(expiresIn).toBeLessThanOrEqual(15 * 60_000);

    // No token: the signed link is what grants the download.
    const download = await app.inject({ method: 'GET', url: link.url });
    expect(download.statusCode).toBe(200);
    expect(download.headers['content-disposition']).toBe(`attachment; filename="${link.fileName}"`);
    const [header, ...lines] = download.body.trimEnd().split('\n');
    expect(header).toBe('code,sex,rows,patients,value_mean,suppressed');
    expect(lines.length).toBe(job.summary?.rowCount);
    for (const line of lines) {
      const [, , rows, patients] = line.split(',');
      for (const count of [rows, patients]) {
        expect(Number(count), line).toBeGreaterThanOrEqual(11);
      }
    }

    const url = new URL(link.url, 'http://medlake.test');
    const tampered = (name: string, value: string) => {
      const changed = new URL(url);
      changed.searchParams.set(name, value);
      return app.inject({ method: 'GET', url: `${changed.pathname}${changed.search}` });
    };
    expect(
      (await tampered('expires', String(Math.floor(Date.now() / 1000) + 86_400))).statusCode,
    ).toBe(403);
    expect((await tampered('user', '00000000-0000-4000-8000-000000000000')).statusCode).toBe(403);
    expect((await tampered('signature', '0'.repeat(64))).statusCode).toBe(403);
    // Every use is audited as a download under who used it (here nobody signed in: anonymous,
    // with the link, which names its owner), the refused ones too, and none of them with the
    // link's signature.
    const audited = await platform.audit.search({}, { page: 1, pageSize: 10 });
    const downloads = audited.entries.filter(
      (entry) => entry.action === 'download' || entry.target?.includes('/downloads/'),
    );
    expect(
      downloads.map((entry) => [
        entry.action,
        entry.outcome,
        entry.actor,
        entry.details.reason ?? null,
        entry.details.owner ?? null,
      ]),
    ).toEqual([
      ['download', 'denied', 'anonymous, with the link', 'tampered', null],
      ['download', 'denied', 'anonymous, with the link', 'tampered', null],
      ['download', 'denied', 'anonymous, with the link', 'tampered', null],
      ['download', 'success', 'anonymous, with the link', null, url.searchParams.get('user')],
    ]);
    expect(JSON.stringify(downloads)).not.toContain(url.searchParams.get('signature'));
  });

  it('refuses an expired link and another user’s export', async () => {
    const job = await finished('row@example.org', byCode);
    const created = (
      await call('row@example.org', 'POST', `/api/v1/queries/${job.id}/exports`, {
        format: 'parquet',
      })
    ).json<{ exportId: string; url: string }>();
    const parquet = await app.inject({ method: 'GET', url: created.url });
    expect(parquet.rawPayload.subarray(0, 4).toString()).toBe('PAR1');

    const rowUser = await platform.catalog.db
      .selectFrom('users')
      .select('id')
      .where('email', '=', 'row@example.org')
      .executeTakeFirstOrThrow();
    const old = platform.downloads.create(
      { exportId: created.exportId, userId: rowUser.id },
      new Date(Date.now() - 3_600_000),
    );
    const expired = await app.inject({ method: 'GET', url: old.url });
    expect(expired.statusCode).toBe(403);
    expect(expired.json()).toMatchObject({
      error: { message: expect.stringContaining('expired') },
    });

    const foreign = await call('other@example.org', 'POST', `/api/v1/queries/${job.id}/exports`, {
      format: 'csv',
    });
    expect(foreign.statusCode).toBe(404);
  });

  it('defuses spreadsheet formulas in CSV exports', async () => {
    const { header, rows } = await fixtureLines('2021-03');
    const columns = header.split(',');
    const description = columns.indexOf('DESCRIPTION');
    const evil = rows.slice(0, 20).map((row) => {
      const fields = row.split(',');
      fields[description] = '=HYPERLINK("http://evil.example";"x")';
      return fields
        .map((field) =>
          field.includes(',') || field.includes('"') ? `"${field.replaceAll('"', '""')}"` : field,
        )
        .join(',');
    });
    const published = await ingest(platform, {
      text: [header, ...evil].join('\n'),
      hospital: 'evil',
      month: '2021-04',
    });
    expect(published.status).toBe('published');
    const job = await finished('row@example.org', {
      dataset: 'synthea-observations',
      select: ['description'],
      where: { column: 'hospital', op: 'eq', value: 'evil' },
      limit: 1,
    });
    const link = (
      await call('row@example.org', 'POST', `/api/v1/queries/${job.id}/exports`, { format: 'csv' })
    ).json<{ url: string }>();
    const body = (await app.inject({ method: 'GET', url: link.url })).body;
    expect(body).toContain(`"'=HYPERLINK(""http://evil.example"";""x"")"`);
    expect(body).not.toMatch(/^"?=/m);
  });

  it('matches no one on a cohort criterion whose releases all lie outside the grant', async () => {
    // Row access to one hospital's releases: the criterion names the other, which the last
    // test published. Its filter reads no release, and the engine still runs the query.
    const email = 'synthea-only@example.org';
    tokens[email] = (await userWithToken(platform, email)).token;
    await grantDatasetAccess(platform, testActor, {
      email,
      datasetId: 'synthea-observations',
      level: 'row',
      hospitals: ['synthea'],
    });
    const ask = (cohort?: object) =>
      finished(email, {
        dataset: 'synthea-observations',
        ...(cohort ? { cohort } : {}),
        measures: [{ fn: 'count' }, { fn: 'patients' }],
      });
    const criterion = { where: { column: 'hospital', op: 'eq', value: 'evil' } };
    const everyone = await ask();
    expect(everyone.status).toBe('succeeded');
    expect(everyone.summary?.matching).toEqual({ rows: 21_697, patients: 59 });
    const within = await ask({ criteria: [criterion] });
    expect(within).toMatchObject({ status: 'succeeded', error: null });
    expect(within.summary?.matching).toEqual({ rows: 0, patients: 0 });
    const outside = await ask({ criteria: [{ ...criterion, exclude: true }] });
    expect(outside.summary?.matching).toEqual(everyone.summary?.matching);
  });

  it('stops serving a user whose grant has expired, without anyone acting', async () => {
    const earlier = await finished('agg@example.org', byCode);
    const grants = grantsRepository(platform.catalog.db);
    await platform.catalog.db
      .updateTable('dataset_grants')
      .set({ expires_at: new Date(Date.now() - 1000) })
      .where(
        'id',
        'in',
        (await grants.list()).filter((g) => g.level === 'aggregate').map((g) => g.id),
      )
      .execute();
    expect((await call('agg@example.org', 'POST', '/api/v1/queries', byCode)).statusCode).toBe(403);
    // The results of a query run while the grant held are data too.
    const page = await call('agg@example.org', 'GET', `/api/v1/queries/${earlier.id}/results`);
    expect(page.statusCode).toBe(403);
    // So are its key points: the job is still the user's, but shows what it found no more.
    expect(earlier.summary?.keyPoints.length).toBeGreaterThan(0);
    const job = await call('agg@example.org', 'GET', `/api/v1/queries/${earlier.id}`);
    expect(job.json<QueryJobView>()).toMatchObject({ status: 'succeeded', summary: null });
    const listed = await call('agg@example.org', 'GET', '/api/v1/queries?pageSize=100');
    const mine = listed.json<{ queries: QueryJobView[] }>().queries;
    expect(mine.find((query) => query.id === earlier.id)).toMatchObject({ summary: null });
    expect(mine.every((query) => query.summary === null)).toBe(true);
    const dictionary = await call(
      'agg@example.org',
      'GET',
      '/api/v1/datasets/synthea-observations/dictionary',
    );
    expect(dictionary.statusCode).toBe(403);
  });
});
