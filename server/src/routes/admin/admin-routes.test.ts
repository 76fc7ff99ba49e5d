import type { AccessRequestView, GrantView } from '@medlake/shared';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  createTestApp,
  createTestPlatform,
  testActor,
  type TestPlatform,
} from '../../../test/helper.ts';
import { prepareDataset } from '../../../test/ingest-helpers.ts';
import type { App } from '../../app.ts';
import { addUser, createApiToken } from '../../use-cases/manage-access.ts';

describe('administration: access requests, grants and projects', () => {
  let platform: TestPlatform;
  let app: App;
  const tokens: Record<string, string> = {};
  const ids: Record<string, string> = {};

  const call = (
    who: string,
    method: 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE',
    url: string,
    payload?: object,
  ) =>
    app.inject({
      method,
      url,
      headers: { authorization: `Bearer ${tokens[who]}` },
      ...(payload ? { payload } : {}),
    });
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
      const email = `${name}@example.org`;
      ids[name] = (await addUser(platform, testActor, { email, name, role })).id;
      tokens[name] = (
        await createApiToken(platform, testActor, { email, name: 't', days: 1 })
      ).token;
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
