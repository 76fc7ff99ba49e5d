import type { QueryJobView, SavedQueryView } from '@medlake/shared';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { callWithTokens, userWithToken } from '../../../test/api-helpers.ts';
import {
  createTestApp,
  createTestPlatform,
  testActor,
  type TestPlatform,
} from '../../../test/helper.ts';
import { prepareDataset } from '../../../test/ingest-helpers.ts';
import type { App } from '../../app.ts';
import { createProject, setProjectMember } from '../../use-cases/access/projects.ts';

describe('saved queries', () => {
  let platform: TestPlatform;
  let app: App;
  const tokens: Record<string, string> = {};
  const spec = {
    dataset: 'synthea-observations',
    where: { op: 'code', codes: ['2339-0'] },
    groupBy: [{ column: 'observed_at', bucket: 'month' }],
    measures: [{ fn: 'patients' }],
  };

  const call = callWithTokens(() => app, tokens);

  beforeAll(async () => {
    platform = await createTestPlatform();
    await prepareDataset(platform, 'synthea-observations');
    await createProject(platform, testActor, { id: 'glucose', name: 'Glucose' });
    // ann and ben share a project; cy is a researcher with access but outside it.
    for (const name of ['ann', 'ben', 'cy']) {
      const grant = { datasetId: 'synthea-observations', level: 'aggregate' } as const;
      tokens[name] = (await userWithToken(platform, `${name}@example.org`, { name, grant })).token;
    }
    for (const email of ['ann@example.org', 'ben@example.org'])
      await setProjectMember(platform, testActor, { projectId: 'glucose', email, member: true });
    app = await createTestApp(platform);
  });

  afterAll(async () => {
    await app.close();
    await platform.dispose();
  });

  it('keeps a query shared with a project for its members, and from everyone else', async () => {
    const saved = await call('ann', 'POST', '/api/v1/saved-queries', {
      name: 'Glucose by month',
      projectId: 'glucose',
      spec,
    });
    expect(saved.statusCode).toBe(201);
    const view = saved.json<SavedQueryView>();
    expect(view).toMatchObject({
      name: 'Glucose by month',
      projectId: 'glucose',
      author: 'ann@example.org',
      mine: true,
      datasetId: 'synthea-observations',
    });

    const forBen = (await call('ben', 'GET', '/api/v1/saved-queries')).json<{
      total: number;
      queries: SavedQueryView[];
    }>();
    expect(forBen.total).toBe(1);
    expect(forBen.queries[0]).toMatchObject({ id: view.id, mine: false });
    expect((await call('ben', 'GET', `/api/v1/saved-queries/${view.id}`)).statusCode).toBe(200);

    const forCy = (await call('cy', 'GET', '/api/v1/saved-queries')).json<{ total: number }>();
    expect(forCy.total).toBe(0);
    expect((await call('cy', 'GET', `/api/v1/saved-queries/${view.id}`)).statusCode).toBe(404);

    // A member runs it as an ordinary query of their own.
    const run = await call('ben', 'POST', '/api/v1/queries', forBen.queries[0]!.spec as object);
    expect(run.statusCode).toBe(202);
    expect(run.json<QueryJobView>().dataset).toBe('synthea-observations');
  });

  it('lets only the author delete, and audits saving and deleting', async () => {
    const saved = (
      await call('ann', 'POST', '/api/v1/saved-queries', { name: 'Mine', spec })
    ).json<SavedQueryView>();
    expect(saved.projectId).toBeNull();
    expect((await call('ben', 'DELETE', `/api/v1/saved-queries/${saved.id}`)).statusCode).toBe(404);
    const shared = (await call('ben', 'GET', '/api/v1/saved-queries')).json<{
      queries: SavedQueryView[];
    }>().queries[0]!;
    expect((await call('ben', 'DELETE', `/api/v1/saved-queries/${shared.id}`)).statusCode).toBe(
      403,
    );
    expect((await call('ann', 'DELETE', `/api/v1/saved-queries/${saved.id}`)).statusCode).toBe(204);
    expect((await call('ann', 'GET', `/api/v1/saved-queries/${saved.id}`)).statusCode).toBe(404);

    const actions = (
      await platform.audit.search({ actor: 'ann@example.org' }, { page: 1, pageSize: 50 })
    ).entries.map((entry) => entry.action);
    expect(actions).toContain('saved_query.create');
    expect(actions).toContain('saved_query.delete');
  });

  it('refuses a spec that could not run, and sharing with a project one is not in', async () => {
    const badColumn = await call('ann', 'POST', '/api/v1/saved-queries', {
      name: 'Bad',
      spec: { ...spec, groupBy: [{ column: 'no_such_column' }] },
    });
    expect(badColumn.statusCode).toBe(400);
    expect(badColumn.json()).toMatchObject({
      error: { details: [{ path: 'groupBy[0].column' }] },
    });

    const notMember = await call('cy', 'POST', '/api/v1/saved-queries', {
      name: 'Sneak in',
      projectId: 'glucose',
      spec,
    });
    expect(notMember.statusCode).toBe(403);
    expect(notMember.json().error.message).toContain('not a member of project glucose');

    const noName = await call('ann', 'POST', '/api/v1/saved-queries', { name: ' ', spec });
    expect(noName.statusCode).toBe(400);
  });

  it('lets only the author rename, reshare or replace the spec, naming a bad field', async () => {
    const saved = (
      await call('ann', 'POST', '/api/v1/saved-queries', { name: 'Draft', spec })
    ).json<SavedQueryView>();
    const renamed = await call('ann', 'PATCH', `/api/v1/saved-queries/${saved.id}`, {
      name: 'Glucose, monthly',
      projectId: 'glucose',
    });
    expect(renamed.statusCode).toBe(200);
    expect(renamed.json<SavedQueryView>()).toMatchObject({
      name: 'Glucose, monthly',
      projectId: 'glucose',
      mine: true,
    });
    const yearly = { ...spec, groupBy: [{ column: 'observed_at', bucket: 'year' }] };
    const respecced = await call('ann', 'PATCH', `/api/v1/saved-queries/${saved.id}`, {
      spec: yearly,
      projectId: null,
    });
    expect(respecced.json<SavedQueryView>()).toMatchObject({ projectId: null });
    expect(respecced.json<SavedQueryView>().spec).toMatchObject({ groupBy: yearly.groupBy });

    const tooLong = await call('ann', 'PATCH', `/api/v1/saved-queries/${saved.id}`, {
      name: 'x'.repeat(5000),
    });
    expect(tooLong.statusCode).toBe(400);
    expect(tooLong.json().error.details[0].path).toBe('/name');
    const badSpec = await call('ann', 'PATCH', `/api/v1/saved-queries/${saved.id}`, {
      spec: { ...spec, measures: [{ fn: 'percentile', column: 'value', p: 90 }] },
    });
    expect(badSpec.statusCode).toBe(400);
    expect(badSpec.json().error.details[0].path).toBe('measures[0].p');

    const shared = (await call('ben', 'GET', '/api/v1/saved-queries')).json<{
      queries: SavedQueryView[];
    }>().queries[0]!;
    expect(
      (await call('ben', 'PATCH', `/api/v1/saved-queries/${shared.id}`, { name: 'Mine now' }))
        .statusCode,
    ).toBe(403);
    const actions = (
      await platform.audit.search({ actor: 'ann@example.org' }, { page: 1, pageSize: 50 })
    ).entries.map((entry) => entry.action);
    expect(actions).toContain('saved_query.update');
  });

  it('pages the query history on the server', async () => {
    for (let i = 0; i < 3; i++) await call('cy', 'POST', '/api/v1/queries', spec);
    const first = (await call('cy', 'GET', '/api/v1/queries?page=1&pageSize=2')).json<{
      total: number;
      queries: QueryJobView[];
    }>();
    const second = (await call('cy', 'GET', '/api/v1/queries?page=2&pageSize=2')).json<{
      total: number;
      queries: QueryJobView[];
    }>();
    expect(first.total).toBe(3);
    expect(first.queries).toHaveLength(2);
    expect(second.queries).toHaveLength(1);
    expect(new Set([...first.queries, ...second.queries].map((query) => query.id)).size).toBe(3);
  });
});
