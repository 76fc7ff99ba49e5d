import type { ExportLink, OutputReport, QueryJobView } from '@medlake/shared';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { callWithTokens, userWithToken } from '../../test/api-helpers.ts';
import { createTestApp, createTestPlatform, type TestPlatform } from '../../test/helper.ts';
import { publishLockedDataset } from '../../test/ingest-helpers.ts';
import type { App } from '../app.ts';
import { createLogger } from '../logger.ts';
import { startQueryWorker, type QueryWorker } from '../use-cases/queries/query-worker.ts';

/**
 * The output check and the airlock: every export carries a report of the rules that ran, and on
 * a dataset with an airlock a result that fails a check (row-level records, small cells a
 * row-level user sees) shows nothing, on any path, until an admin approves it.
 */
describe('the output check and the airlock', () => {
  let platform: TestPlatform;
  let app: App;
  let worker: QueryWorker;
  const tokens: Record<string, string> = {};

  const call = callWithTokens(() => app, tokens);

  const exportOf = async (who: string, spec: object) => {
    const submitted = await call(who, 'POST', '/api/v1/queries?wait=30', {
      dataset: 'locked',
      ...spec,
    });
    expect(submitted.statusCode, submitted.body).toBe(200);
    const { id } = submitted.json<{ id: string }>();
    const made = await call(who, 'POST', `/api/v1/queries/${id}/exports`, { format: 'csv' });
    expect(made.statusCode, made.body).toBe(201);
    return { queryId: id, link: made.json<ExportLink>() };
  };

  beforeAll(async () => {
    platform = await createTestPlatform();
    await publishLockedDataset(platform);
    for (const [email, role, level] of [
      ['rowan@example.org', 'researcher', 'row'],
      ['agnes@example.org', 'researcher', 'aggregate'],
      ['admin@example.org', 'admin', undefined],
    ] as const) {
      const grant = level && { datasetId: 'locked', level };
      tokens[email] = (await userWithToken(platform, email, { role, grant })).token;
    }
    worker = startQueryWorker(platform, { logger: createLogger('silent'), pollMs: 50 });
    app = await createTestApp(platform);
  }, 120_000);

  afterAll(async () => {
    await app?.close();
    await worker?.stop();
    await platform?.dispose();
  });

  const check = (report: OutputReport, name: string) =>
    report.checks.find((item) => item.check === name);

  it('lets an aggregate user’s export through at once, with the report of what disclosure control removed', async () => {
    const { link } = await exportOf('agnes@example.org', {
      groupBy: [{ column: 'code' }],
      measures: [{ fn: 'patients' }],
    });
    expect(link).toMatchObject({ review: 'not_needed', report: { needsReview: false } });
    expect(link.url).toMatch(/^\/api\/v1\/downloads\//);
    expect(check(link.report, 'small_cells')).toMatchObject({ passed: true });
    expect(check(link.report, 'disclosure_control')?.detail).toMatch(/fewer than 11 patients/);
    expect((await app.inject({ method: 'GET', url: link.url! })).statusCode).toBe(200);
  });

  it('holds a row-level result and a row-level user’s small cells on every path until an admin approves, then opens them all', async () => {
    const submit = async (spec: object) => {
      const answer = await call('rowan@example.org', 'POST', '/api/v1/queries?wait=30', {
        dataset: 'locked',
        ...spec,
      });
      expect(answer.statusCode, answer.body).toBe(200);
      return answer.json<QueryJobView>();
    };
    const rows = await submit({ select: ['patient', 'code', 'value'], limit: 50 });
    // The answer says the result waits, and holds nothing of it: no key points, no first page.
    expect(rows).toMatchObject({
      status: 'succeeded',
      summary: null,
      review: { state: 'pending', checks: ['row_level'] },
    });
    expect(rows.firstPage).toBeUndefined();
    expect(rows.review?.message).toMatch(/^Waiting for review/);
    const cells = await submit({ groupBy: [{ column: 'code' }], measures: [{ fn: 'patients' }] });
    expect(cells.review).toMatchObject({ state: 'pending', checks: ['small_cells'] });

    // Pages and exports of any format are refused with that status while it waits.
    const page = await call('rowan@example.org', 'GET', `/api/v1/queries/${rows.id}/results`);
    expect(page.statusCode).toBe(409);
    expect(page.json<{ error: { message: string } }>().error.message).toMatch(
      /^Waiting for review/,
    );
    for (const format of ['csv', 'parquet']) {
      const made = await call('rowan@example.org', 'POST', `/api/v1/queries/${rows.id}/exports`, {
        format,
      });
      expect(made.statusCode).toBe(409);
    }
    // The researcher cannot approve it.
    const self = await call(
      'rowan@example.org',
      'POST',
      `/api/v1/admin/results/${rows.id}/review`,
      { approve: true, reason: 'looks fine to me' },
    );
    expect(self.statusCode).toBe(403);

    // The admins' queue shows each result with its full report, figures included.
    const queue = await call('admin@example.org', 'GET', '/api/v1/admin/results');
    const waiting = queue.json<{
      results: Array<{ queryId: string; userEmail: string; report: OutputReport }>;
    }>().results;
    expect(waiting.map((item) => [item.queryId, item.userEmail])).toEqual([
      [rows.id, 'rowan@example.org'],
      [cells.id, 'rowan@example.org'],
    ]);
    expect(check(waiting[0]!.report, 'row_level')).toMatchObject({
      passed: false,
      detail: 'The result holds 50 row-level records.',
    });
    expect(check(waiting[1]!.report, 'small_cells')?.detail).toMatch(
      /groups show counts from 1 to 10 \(row-level access: nothing was suppressed\)/,
    );
    const approve = await call(
      'admin@example.org',
      'POST',
      `/api/v1/admin/results/${rows.id}/review`,
      {
        approve: true,
        reason: 'agreed extract for the ethics-approved study 2026-14',
      },
    );
    expect(approve.statusCode).toBe(204);
    const reject = await call(
      'admin@example.org',
      'POST',
      `/api/v1/admin/results/${cells.id}/review`,
      {
        approve: false,
        reason: 'small cells; aggregate with bands instead',
      },
    );
    expect(reject.statusCode).toBe(204);

    // Approved: the key points, the pages and every format.
    const released = (
      await call('rowan@example.org', 'GET', `/api/v1/queries/${rows.id}`)
    ).json<QueryJobView>();
    expect(released).toMatchObject({ review: { state: 'approved' }, summary: { rowCount: 50 } });
    const pages = await call('rowan@example.org', 'GET', `/api/v1/queries/${rows.id}/results`);
    expect(pages.json<{ rows: unknown[] }>().rows).toHaveLength(50);
    const link = (
      await call('rowan@example.org', 'POST', `/api/v1/queries/${rows.id}/exports`, {
        format: 'csv',
      })
    ).json<ExportLink>();
    expect(link).toMatchObject({ review: 'approved' });
    const download = await app.inject({ method: 'GET', url: link.url! });
    expect(download.statusCode).toBe(200);
    expect(download.body.trimEnd().split('\n')).toHaveLength(51);
    const parquet = (
      await call('rowan@example.org', 'POST', `/api/v1/queries/${rows.id}/exports`, {
        format: 'parquet',
      })
    ).json<ExportLink>();
    expect((await app.inject({ method: 'GET', url: parquet.url! })).statusCode).toBe(200);

    // Rejected: nothing, on any path, ever.
    const rejected = (
      await call('rowan@example.org', 'GET', `/api/v1/queries/${cells.id}`)
    ).json<QueryJobView>();
    expect(rejected).toMatchObject({ summary: null, review: { state: 'rejected' } });
    expect(
      (await call('rowan@example.org', 'GET', `/api/v1/queries/${cells.id}/results`)).statusCode,
    ).toBe(403);
    expect(
      (
        await call('rowan@example.org', 'POST', `/api/v1/queries/${cells.id}/exports`, {
          format: 'csv',
        })
      ).statusCode,
    ).toBe(403);

    const audited = await platform.audit.search(
      { action: 'export.review' },
      { page: 1, pageSize: 10 },
    );
    expect(
      audited.entries.map((entry) => (entry.details as { review: string }).review).sort(),
    ).toEqual(['approved', 'rejected']);
  });
});
