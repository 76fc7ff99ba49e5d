import type { AccessRequestView, GrantView } from '@medlake/shared';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { callWithTokens, userWithToken } from '../../../test/api-helpers.ts';
import { createTestApp, createTestPlatform, type TestPlatform } from '../../../test/helper.ts';
import { prepareDataset } from '../../../test/ingest-helpers.ts';
import type { App } from '../../app.ts';
import { grantsRepository } from '../../catalog/grants-repository.ts';

describe('administration: access requests, grants and projects', () => {
  let platform: TestPlatform;
  let app: App;
  const tokens: Record<string, string> = {};
  const ids: Record<string, string> = {};

  const call = callWithTokens(() => app, tokens);
  /** Whether the user may see the dataset's dictionary: what a grant opens. */
  const canRead = async (who: string) =>
    (await call(who, 'GET', '/api/v1/datasets/synthea-observations/dictionary')).statusCode === 200;

  beforeAll(async () => {
    platform = await createTestPlatform();
    await prepareDataset(platform, 'synthea-observations');
    for (const [name, role] of [
      ['admin', 'admin'],
      ['rae', 'researcher'],
      ['sam', 'researcher'],
    ] as const) {
      const added = await userWithToken(platform, `${name}@example.org`, { role, name });
      ids[name] = added.user.id;
      tokens[name] = added.token;
    }
    app = await createTestApp(platform);
  });

  afterAll(async () => {
    await app.close();
    await platform.dispose();
  });

  it('takes a request that accepts the terms, and an admin’s approval opens the dataset', async () => {
    const withoutTerms = await call('rae', 'POST', '/api/v1/access-requests', {
      datasetId: 'synthea-observations',
      purpose: 'Glucose trends in adults with diabetes, 2020–2021.',
      level: 'row',
      acceptTerms: false,
    });
    expect(withoutTerms.statusCode).toBe(400);
    expect(withoutTerms.json()).toMatchObject({ error: { details: [{ path: 'acceptTerms' }] } });

    const made = await call('rae', 'POST', '/api/v1/access-requests', {
      datasetId: 'synthea-observations',
      purpose: 'Glucose trends in adults with diabetes, 2020–2021.',
      level: 'row',
      acceptTerms: true,
    });
    expect(made.statusCode).toBe(201);
    const request = made.json<AccessRequestView>();
    expect(request).toMatchObject({ status: 'pending', termsVersion: 1 });
    expect(await canRead('rae')).toBe(false);

    const pending = (await call('admin', 'GET', '/api/v1/admin/access-requests')).json<{
      total: number;
      requests: AccessRequestView[];
    }>();
    expect(pending.total).toBe(1);
    expect(pending.requests.map((item) => item.id)).toEqual([request.id]);
    // The admin sees who asks.
    expect(pending.requests[0]?.userEmail).toBe('rae@example.org');

    const expiresAt = new Date(Date.now() + 90 * 86_400_000).toISOString();
    const approved = await call(
      'admin',
      'POST',
      `/api/v1/admin/access-requests/${request.id}/decision`,
      {
        approve: true,
        level: 'aggregate',
        expiresAt,
      },
    );
    expect(approved.statusCode).toBe(200);
    expect(approved.json()).toMatchObject({ status: 'approved', grantId: expect.any(String) });
    expect(await canRead('rae')).toBe(true);

    // The researcher sees the decision; the grant is at the level the admin chose.
    const own = (await call('rae', 'GET', '/api/v1/access-requests')).json<{
      requests: AccessRequestView[];
    }>();
    expect(own.requests[0]).toMatchObject({ status: 'approved' });
    const grants = (await call('admin', 'GET', `/api/v1/admin/grants?userId=${ids.rae}`)).json<{
      grants: GrantView[];
    }>();
    expect(grants.grants).toEqual([
      expect.objectContaining({ level: 'aggregate', expiresAt: new Date(expiresAt).toISOString() }),
    ]);
    const again = await call(
      'admin',
      'POST',
      `/api/v1/admin/access-requests/${request.id}/decision`,
      {
        approve: false,
        reason: 'changed my mind',
      },
    );
    expect(again.statusCode).toBe(409);
  });

  it('needs a reason to reject, and the researcher reads it', async () => {
    const request = (
      await call('sam', 'POST', '/api/v1/access-requests', {
        datasetId: 'synthea-observations',
        purpose: 'Everything about everyone, for curiosity.',
        level: 'row',
        acceptTerms: true,
      })
    ).json<AccessRequestView>();
    const bare = await call(
      'admin',
      'POST',
      `/api/v1/admin/access-requests/${request.id}/decision`,
      {
        approve: false,
      },
    );
    expect(bare.statusCode).toBe(400);
    await call('admin', 'POST', `/api/v1/admin/access-requests/${request.id}/decision`, {
      approve: false,
      reason: 'The purpose is not a research question.',
    });
    const own = (await call('sam', 'GET', '/api/v1/access-requests')).json<{
      requests: AccessRequestView[];
    }>();
    expect(own.requests[0]).toMatchObject({
      status: 'rejected',
      decisionReason: 'The purpose is not a research question.',
    });
    expect(await canRead('sam')).toBe(false);
    const log = await platform.audit.search(
      { action: 'access_request.decide' },
      { page: 1, pageSize: 5 },
    );
    expect(log.entries[0]?.details).toMatchObject({ decision: 'rejected', user: ids.sam });
  });

  it('grants a project as a whole, for as long as one is a member', async () => {
    expect(
      (
        await call('admin', 'POST', '/api/v1/admin/projects', {
          id: 'diabetes-2026',
          name: 'Diabetes',
        })
      ).statusCode,
    ).toBe(201);
    const grant = (
      await call('admin', 'POST', '/api/v1/admin/grants', {
        datasetId: 'synthea-observations',
        projectId: 'diabetes-2026',
        level: 'aggregate',
      })
    ).json<GrantView>();
    expect(grant).toMatchObject({ projectId: 'diabetes-2026', userId: null });
    expect(await canRead('sam')).toBe(false);
    await call('admin', 'PUT', `/api/v1/admin/projects/diabetes-2026/members/${ids.sam}`);
    expect(await canRead('sam')).toBe(true);
    await call('admin', 'DELETE', `/api/v1/admin/projects/diabetes-2026/members/${ids.sam}`);
    expect(await canRead('sam')).toBe(false);

    await call('admin', 'PUT', `/api/v1/admin/projects/diabetes-2026/members/${ids.sam}`);
    expect((await call('admin', 'DELETE', `/api/v1/admin/grants/${grant.id}`)).statusCode).toBe(
      200,
    );
    expect(await canRead('sam')).toBe(false);
  });

  it('keeps one grant per holder, dataset and level, and a revoke ends the access for good', async () => {
    const ask = () =>
      call('admin', 'POST', '/api/v1/admin/grants', {
        datasetId: 'synthea-observations',
        userId: ids.sam,
        level: 'row',
      });
    const first = await ask();
    expect(first.statusCode).toBe(201);
    const twice = await ask();
    expect(twice.statusCode).toBe(409);
    expect(twice.json()).toMatchObject({
      error: { message: expect.stringMatching(/^sam@example.org already has row access/) },
    });
    // Not even straight into the catalog, as a second server racing the first would.
    const grant = first.json<GrantView>();
    await expect(
      grantsRepository(platform.catalog.db).add({
        datasetId: 'synthea-observations',
        userId: ids.sam!,
        projectId: null,
        level: 'row',
        hospitals: ['synthea'],
        expiresAt: null,
      }),
    ).rejects.toThrow();
    const listed = (await call('admin', 'GET', `/api/v1/admin/grants?userId=${ids.sam}`)).json<{
      grants: GrantView[];
    }>();
    expect(listed.grants.map((item) => item.id)).toEqual([grant.id]);
    expect(await canRead('sam')).toBe(true);

    expect((await call('admin', 'DELETE', `/api/v1/admin/grants/${grant.id}`)).statusCode).toBe(
      200,
    );
    expect(await canRead('sam')).toBe(false);
    // Revoked is final: a second revoke finds nothing in force, and a new grant is a new one.
    expect((await call('admin', 'DELETE', `/api/v1/admin/grants/${grant.id}`)).statusCode).toBe(
      404,
    );
    const again = await ask();
    expect(again.statusCode).toBe(201);
    expect(again.json<GrantView>().id).not.toBe(grant.id);
    await call('admin', 'DELETE', `/api/v1/admin/grants/${again.json<GrantView>().id}`);
  });

  it('lets an expired grant be followed by a new one', async () => {
    const [past] = await platform.catalog.db
      .insertInto('dataset_grants')
      .values({
        id: crypto.randomUUID(),
        dataset_id: 'synthea-observations',
        user_id: ids.sam!,
        project_id: null,
        level: 'aggregate',
        hospitals: null,
        expires_at: new Date(Date.now() - 86_400_000),
      })
      .returning('id')
      .execute();
    expect(await canRead('sam')).toBe(false);
    const renewed = await call('admin', 'POST', '/api/v1/admin/grants', {
      datasetId: 'synthea-observations',
      userId: ids.sam,
      level: 'aggregate',
    });
    expect(renewed.statusCode).toBe(201);
    expect(await canRead('sam')).toBe(true);
    expect((await grantsRepository(platform.catalog.db).get(past!.id))?.revokedAt).not.toBeNull();
    await call('admin', 'DELETE', `/api/v1/admin/grants/${renewed.json<GrantView>().id}`);
  });

  it('adds users with one-time passwords and keeps the last admin', async () => {
    const made = await call('admin', 'POST', '/api/v1/admin/users', {
      email: 'new@example.org',
      name: 'New',
      role: 'auditor',
    });
    expect(made.statusCode).toBe(201);
    expect(made.json<{ oneTimePassword: string }>().oneTimePassword).toMatch(/^[\w-]{20}$/);
    const demote = await call('admin', 'PATCH', `/api/v1/admin/users/${ids.admin}`, {
      role: 'researcher',
    });
    expect(demote.statusCode).toBe(409);
    const disable = await call('admin', 'PATCH', `/api/v1/admin/users/${ids.admin}`, {
      disabled: true,
    });
    expect(disable.statusCode).toBe(409);
  });
});
