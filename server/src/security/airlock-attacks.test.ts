import type { ExportLink, QueryJobView, ResultPage } from '@medlake/shared';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { attemptTally } from '../../test/attempts.ts';
import { callWithTokens, userWithToken } from '../../test/api-helpers.ts';
import { createTestApp, createTestPlatform, type TestPlatform } from '../../test/helper.ts';
import { publishLockedDataset } from '../../test/ingest-helpers.ts';
import type { App } from '../app.ts';
import { usersRepository } from '../catalog/users-repository.ts';
import { createLogger } from '../logger.ts';
import { startQueryWorker, type QueryWorker } from '../use-cases/queries/query-worker.ts';
import { exportQueryResult } from '../use-cases/queries/export-query.ts';
import { readResultPage } from '../use-cases/queries/read-query.ts';

/**
 * Issue 27, the airlock on every path: while a row-level result waited for approval, its pages
 * gave all its rows. Here a row-level researcher of a dataset with an airlock tries every way
 * to the data of a result that waits (and then of one rejected): paging through it, every page
 * size and sort, the first page inline (`?wait=`), the query's key points and history, every
 * export format and a download link, the same spec again (a fresh job, and the rows cached in
 * memory for an aggregate one), and the use-cases the CLI calls. Every answer is kept, and once
 * an admin approves the result, each is checked against what the result holds: an attempt
 * succeeds if its answer carried any row, figure or download link of it, or any of its
 * pseudonyms or its row count. Approval then opens every path; rejection keeps them closed.
 */
describe('attacks on the airlock', () => {
  let platform: TestPlatform;
  let app: App;
  let worker: QueryWorker;
  const tokens: Record<string, string> = {};
  const { tally, attempt } = attemptTally();
  /** What each attempt got back, judged once the result's content is known. */
  const answers: Array<{ kind: string; what: string; status: number; body: string }> = [];

  const call = callWithTokens(() => app, tokens);
  const rowan = 'rowan@example.org';
  const rowSpec = { dataset: 'locked', select: ['patient', 'code', 'value', 'observed_at'] };
  /** A row-level user's aggregate with small cells: also held, and its rows cached in memory. */
  const cellSpec = {
    dataset: 'locked',
    groupBy: [{ column: 'code' }],
    measures: [{ fn: 'patients' }, { fn: 'count' }],
  };
  let held: string;
  let heldCells: string;
  let resubmitted: string[] = [];

  /** Records an answer as an attempt of `kind`, to be judged against the result's content. */
  const record = <T extends { statusCode: number; body: string }>(
    kind: string,
    what: string,
    answer: T,
  ): T => {
    answers.push({ kind, what, status: answer.statusCode, body: answer.body });
    return answer;
  };

  const submit = async (spec: object) => {
    const answer = await call(rowan, 'POST', '/api/v1/queries?wait=30', spec);
    expect(answer.statusCode, answer.body).toBe(200);
    return answer;
  };

  beforeAll(async () => {
    platform = await createTestPlatform();
    await publishLockedDataset(platform);
    const grant = { datasetId: 'locked', level: 'row' } as const;
    tokens[rowan] = (await userWithToken(platform, rowan, { grant })).token;
    const admin = 'admin@example.org';
    tokens[admin] = (await userWithToken(platform, admin, { role: 'admin' })).token;
    worker = startQueryWorker(platform, { logger: createLogger('silent'), pollMs: 50 });
    app = await createTestApp(platform);
  }, 180_000);

  afterAll(async () => {
    console.log(
      'airlock attacks (class: tried, succeeded):\n' +
        [...tally]
          .map(([kind, { tried, succeeded }]) => `  ${kind}: ${tried}, ${succeeded}`)
          .join('\n'),
    );
    await app?.close();
    await worker?.stop();
    await platform?.dispose();
  });

  it('asks the first page inline: the answer says "waiting for review" and holds nothing', async () => {
    const first = record('the first page inline (?wait=)', 'rows', await submit(rowSpec));
    const job = first.json<QueryJobView>();
    held = job.id;
    expect(job).toMatchObject({ status: 'succeeded', summary: null, review: { state: 'pending' } });
    expect(job.firstPage).toBeUndefined();
    expect(job.review?.checks).toEqual(['row_level']);
    expect(job.review?.message).toMatch(/^Waiting for review/);
    const cells = record('the first page inline (?wait=)', 'cells', await submit(cellSpec));
    heldCells = cells.json<QueryJobView>().id;
    expect(cells.json<QueryJobView>()).toMatchObject({
      summary: null,
      review: { state: 'pending', checks: ['small_cells'] },
    });
  });

  it('pages through the result, at every page size and sort', async () => {
    for (const id of [held, heldCells]) {
      for (let page = 1; page <= 25; page += 1) {
        const answer = record(
          'result pages, paged through',
          `${id} page ${page}`,
          await call(rowan, 'GET', `/api/v1/queries/${id}/results?page=${page}&pageSize=1000`),
        );
        expect(answer.statusCode).toBe(409);
        expect(answer.json<{ error: { message: string } }>().error.message).toMatch(
          /^Waiting for review/,
        );
      }
      for (const pageSize of [1, 7, 10, 100, 999, 1000]) {
        for (const sort of ['', 'patient', 'code', 'value', 'observed_at', 'patients', 'rows']) {
          for (const direction of ['asc', 'desc']) {
            const query = `pageSize=${pageSize}${sort ? `&sort=${sort}&direction=${direction}` : ''}`;
            record(
              'page size and sort changed',
              `${id} ${query}`,
              await call(rowan, 'GET', `/api/v1/queries/${id}/results?${query}`),
            );
            if (!sort) break;
          }
        }
      }
    }
  });

  it('asks for the result by every other route', async () => {
    for (const id of [held, heldCells]) {
      for (const [what, method, url] of [
        ['the query', 'GET', `/api/v1/queries/${id}`],
        ['the query, long-polled', 'GET', `/api/v1/queries/${id}?wait=1`],
        ['the history', 'GET', '/api/v1/queries?page=1&pageSize=100'],
        ['cancelling it (the answer is the query)', 'DELETE', `/api/v1/queries/${id}`],
      ] as const) {
        const answer = record('the query by another route', what, await call(rowan, method, url));
        expect(answer.statusCode, answer.body).toBe(200);
      }
      // The use-cases the CLI (`medlake query`) and the web app's pages call.
      const user = (await usersRepository(platform.catalog.db).byEmail(rowan))!;
      await expect(readResultPage(platform, user, id, { page: 1, pageSize: 1000 })).rejects.toThrow(
        /^Waiting for review/,
      );
      answers.push({ kind: 'the query by another route', what: 'use-case', status: 409, body: '' });
    }
  });

  it('exports it in every format and tries the download route', async () => {
    for (const id of [held, heldCells]) {
      for (const format of ['csv', 'parquet']) {
        const answer = record(
          'exports of each format',
          `${id} ${format}`,
          await call(rowan, 'POST', `/api/v1/queries/${id}/exports`, { format }),
        );
        expect(answer.statusCode).toBe(409);
        // An unknown format is refused as such, and tells nothing either.
        record(
          'exports of each format',
          `${id} xlsx`,
          await call(rowan, 'POST', `/api/v1/queries/${id}/exports`, { format: 'xlsx' }),
        );
      }
      const user = (await usersRepository(platform.catalog.db).byEmail(rowan))!;
      await expect(
        exportQueryResult(platform, { user, source: 'test' }, id, 'parquet'),
      ).rejects.toThrow(/^Waiting for review/);
      answers.push({ kind: 'exports of each format', what: 'use-case', status: 409, body: '' });
    }
  });

  it('re-submits the same spec, to hit a cached result or a finished twin', async () => {
    resubmitted = [];
    for (const spec of [rowSpec, cellSpec, { ...rowSpec, select: [...rowSpec.select].reverse() }]) {
      for (let time = 0; time < 3; time += 1) {
        const answer = record('the same spec again', JSON.stringify(spec), await submit(spec));
        const job = answer.json<QueryJobView>();
        resubmitted.push(job.id);
        expect(job).toMatchObject({ summary: null, review: { state: 'pending' } });
        record(
          'the same spec again',
          `${job.id} page 1`,
          await call(rowan, 'GET', `/api/v1/queries/${job.id}/results`),
        );
      }
    }
  });

  it('finds nothing of the result in any answer once it is known, then approval opens every path', async () => {
    const queue = await call('admin@example.org', 'GET', '/api/v1/admin/results');
    const waiting = queue.json<{ results: Array<{ queryId: string; report: unknown }> }>().results;
    expect(waiting.map((item) => item.queryId)).toEqual(
      expect.arrayContaining([held, heldCells, ...resubmitted]),
    );
    // The researcher cannot release their own result.
    const self = await call(rowan, 'POST', `/api/v1/admin/results/${held}/review`, {
      approve: true,
      reason: 'my own result',
    });
    expect(self.statusCode).toBe(403);
    const approve = await call(
      'admin@example.org',
      'POST',
      `/api/v1/admin/results/${held}/review`,
      {
        approve: true,
        reason: 'agreed extract for study 2026-27',
      },
    );
    expect(approve.statusCode).toBe(204);

    // Every path opens: the first page and key points, every page, every format.
    const job = (await call(rowan, 'GET', `/api/v1/queries/${held}`)).json<QueryJobView>();
    expect(job.review?.state).toBe('approved');
    const rowCount = job.summary!.rowCount;
    expect(rowCount).toBeGreaterThan(10_000);
    const pseudonyms = new Set<string>();
    for (let page = 1; ; page += 1) {
      const answer = await call(
        rowan,
        'GET',
        `/api/v1/queries/${held}/results?page=${page}&pageSize=1000`,
      );
      expect(answer.statusCode).toBe(200);
      const rows = answer.json<ResultPage>().rows;
      for (const row of rows) pseudonyms.add(String(row.patient));
      if (rows.length < 1000) break;
    }
    for (const format of ['csv', 'parquet']) {
      const link = (
        await call(rowan, 'POST', `/api/v1/queries/${held}/exports`, { format })
      ).json<ExportLink>();
      expect(link).toMatchObject({ review: 'approved' });
      expect((await app.inject({ method: 'GET', url: link.url! })).statusCode).toBe(200);
    }
    // The twin of the approved result is a result of its own, still held.
    const twin = await call(rowan, 'GET', `/api/v1/queries/${resubmitted[0]}/results`);
    expect(twin.statusCode).toBe(409);

    // The row count as a figure: alone, not inside an id or a hash.
    const figure = new RegExp(
      `(^|[^0-9a-f])(${rowCount}|${rowCount.toLocaleString('en-US')})([^0-9a-f]|$)`,
    );
    for (const answer of answers) {
      const leaked =
        (answer.status >= 200 &&
          answer.status < 300 &&
          /"rows":\[\{|"firstPage"|"url":"\//.test(answer.body)) ||
        /"summary":\{/.test(answer.body) ||
        figure.test(answer.body) ||
        [...pseudonyms].some((pseudonym) => answer.body.includes(pseudonym));
      attempt(answer.kind, leaked, `${answer.what}: ${answer.status} ${answer.body.slice(0, 200)}`);
    }
  });

  it('keeps every path closed once an admin rejects the result', async () => {
    const reject = await call(
      'admin@example.org',
      'POST',
      `/api/v1/admin/results/${heldCells}/review`,
      {
        approve: false,
        reason: 'small cells; group with bands instead',
      },
    );
    expect(reject.statusCode).toBe(204);
    const again = await call(
      'admin@example.org',
      'POST',
      `/api/v1/admin/results/${heldCells}/review`,
      {
        approve: true,
        reason: 'changed my mind',
      },
    );
    expect(again.statusCode).toBe(409);
    const tries: Array<[string, Promise<{ statusCode: number; body: string }>]> = [
      ['the query', call(rowan, 'GET', `/api/v1/queries/${heldCells}`)],
      ['page 1', call(rowan, 'GET', `/api/v1/queries/${heldCells}/results`)],
      [
        'sorted',
        call(rowan, 'GET', `/api/v1/queries/${heldCells}/results?sort=rows&direction=desc`),
      ],
      ['csv', call(rowan, 'POST', `/api/v1/queries/${heldCells}/exports`, { format: 'csv' })],
      [
        'parquet',
        call(rowan, 'POST', `/api/v1/queries/${heldCells}/exports`, { format: 'parquet' }),
      ],
      ['history', call(rowan, 'GET', '/api/v1/queries?page=1&pageSize=100')],
    ];
    for (const [what, pending] of tries) {
      const answer = await pending;
      const parsed = JSON.parse(answer.body) as {
        queries?: QueryJobView[];
      } & Partial<QueryJobView>;
      const view = parsed.queries?.find((item) => item.id === heldCells) ?? parsed;
      const leaked =
        (answer.statusCode < 300 && /"rows":\[\{|"url":"\//.test(answer.body)) ||
        (view.summary !== undefined && view.summary !== null);
      attempt(
        'after a rejection',
        leaked,
        `${what}: ${answer.statusCode} ${answer.body.slice(0, 200)}`,
      );
      if (what === 'page 1') {
        expect(answer.statusCode).toBe(403);
        expect(answer.body).toMatch(/Not approved/);
      }
    }
    const job = (await call(rowan, 'GET', `/api/v1/queries/${heldCells}`)).json<QueryJobView>();
    expect(job).toMatchObject({ summary: null, review: { state: 'rejected' } });
    const audited = await platform.audit.search(
      { action: 'export.review' },
      { page: 1, pageSize: 10 },
    );
    expect(
      audited.entries.map((entry) => (entry.details as { review: string }).review).sort(),
    ).toEqual(['approved', 'rejected']);
  });
});
