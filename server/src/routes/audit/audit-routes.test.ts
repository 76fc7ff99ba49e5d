import type { AuditPage } from '@medlake/shared';
import { parse } from 'csv-parse/sync';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { userWithToken } from '../../../test/api-helpers.ts';
import { createTestApp, createTestPlatform, type TestPlatform } from '../../../test/helper.ts';
import type { App } from '../../app.ts';

describe('/api/v1/audit', () => {
  let platform: TestPlatform;
  let app: App;
  const tokens: Record<string, string> = {};

  const get = (who: string, url: string) =>
    app.inject({ method: 'GET', url, headers: { authorization: `Bearer ${tokens[who]}` } });

  beforeAll(async () => {
    platform = await createTestPlatform();
    for (const role of ['admin', 'auditor', 'researcher'] as const) {
      const email = `${role}@example.org`;
      tokens[role] = (await userWithToken(platform, email, { role, name: role })).token;
    }
    app = await createTestApp(platform);
  });

  afterAll(async () => {
    await app.close();
    await platform.dispose();
  });

  it('refuses a researcher, and audits the refusal with who and from where', async () => {
    const refused = await get('researcher', '/api/v1/audit');
    expect(refused.statusCode).toBe(403);
    const page = (await get('auditor', '/api/v1/audit?action=access.denied')).json<AuditPage>();
    expect(page.entries[0]).toMatchObject({
      action: 'access.denied',
      actor: 'researcher@example.org',
      target: 'route:GET /api/v1/audit',
      outcome: 'denied',
      source: '127.0.0.1',
    });
    expect(page.entries[0]).not.toHaveProperty('prevHash');
  });

  it('refuses an anonymous caller, and audits that too', async () => {
    expect((await app.inject({ method: 'GET', url: '/api/v1/audit' })).statusCode).toBe(401);
    const page = (await get('admin', '/api/v1/audit?action=access.denied')).json<AuditPage>();
    expect(page.entries[0]).toMatchObject({ actorId: null, outcome: 'denied' });
  });

  it('does not take a signed-out page load for a refusal', async () => {
    const before = (
      await platform.audit.search({ action: 'access.denied' }, { page: 1, pageSize: 1 })
    ).total;
    // What the web app asks on every load before anyone signs in.
    expect((await app.inject({ method: 'GET', url: '/api/v1/session' })).statusCode).toBe(401);
    expect(
      (await platform.audit.search({ action: 'access.denied' }, { page: 1, pageSize: 1 })).total,
    ).toBe(before);
    // A session cookie that no longer works is still on record.
    const stale = await app.inject({
      method: 'GET',
      url: '/api/v1/session',
      cookies: { medlake_session: 'not-a-session' },
    });
    expect(stale.statusCode).toBe(401);
    expect(
      (await platform.audit.search({ action: 'access.denied' }, { page: 1, pageSize: 1 })).total,
    ).toBe(before + 1);
  });

  it('pages through the entries, newest first, and records each reading', async () => {
    const first = (await get('auditor', '/api/v1/audit?pageSize=2')).json<AuditPage>();
    expect(first.entries).toHaveLength(2);
    expect(first.entries[0]).toMatchObject({ action: 'audit.read', actor: 'auditor@example.org' });
    const second = (await get('auditor', '/api/v1/audit?pageSize=2&page=2')).json<AuditPage>();
    // The second reading is an entry of its own, so the pages overlap by one.
    expect(second.entries[1]?.seq).toBe((first.entries[1]?.seq ?? 0) - 1);
    const created = (
      await get('admin', '/api/v1/audit?action=user.create&pageSize=10')
    ).json<AuditPage>();
    expect(created.entries.map((entry) => entry.details.role).sort()).toEqual([
      'admin',
      'auditor',
      'researcher',
    ]);
  });

  it('exports CSV with formula cells defused', async () => {
    await platform.audit.record({
      action: 'login',
      actor: { userId: null, name: '=HYPERLINK("http://evil")', source: '10.1.2.3' },
      outcome: 'failure',
    });
    const response = await get('auditor', '/api/v1/audit/export?outcome=failure');
    expect(response.statusCode).toBe(200);
    expect(response.headers['content-type']).toContain('text/csv');
    const rows = parse(response.body, { columns: true }) as Array<Record<string, string>>;
    expect(rows).toHaveLength(1);
    expect(rows[0]).toMatchObject({
      actor: `'=HYPERLINK("http://evil")`,
      action: 'login',
      source: '10.1.2.3',
    });
  });

  it('verifies the chain for an auditor', async () => {
    const response = await app.inject({
      method: 'POST',
      url: '/api/v1/audit/verify',
      headers: { authorization: `Bearer ${tokens.auditor}` },
    });
    expect(response.statusCode).toBe(200);
    expect(response.json()).toMatchObject({ ok: true });
  });
});
