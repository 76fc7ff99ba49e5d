import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { userWithToken } from '../../test/api-helpers.ts';
import { createTestApp, createTestPlatform, type TestPlatform } from '../../test/helper.ts';
import type { App } from '../app.ts';

describe('security headers, body limits and proxies', () => {
  let platform: TestPlatform;
  let app: App;
  let token: string;

  beforeAll(async () => {
    platform = await createTestPlatform('pglite', { MEDLAKE_TRUST_PROXY: '127.0.0.1' });
    token = (await userWithToken(platform, 'r@example.org', { name: 'R' })).token;
    app = await createTestApp(platform);
  });

  afterAll(async () => {
    await app.close();
    await platform.dispose();
  });

  it('sends a content security policy that forbids framing, and no HSTS over http', async () => {
    const response = await app.inject({ method: 'GET', url: '/api/health' });
    const policy = String(response.headers['content-security-policy']);
    expect(policy).toContain("frame-ancestors 'none'");
    expect(policy).toContain("script-src 'self'");
    expect(response.headers['x-content-type-options']).toBe('nosniff');
    expect(response.headers['referrer-policy']).toBe('no-referrer');
    expect(response.headers['strict-transport-security']).toBeUndefined();
  });

  it('sends HSTS and takes the client address from a trusted proxy over https', async () => {
    const response = await app.inject({
      method: 'POST',
      url: '/api/v1/session',
      headers: { 'x-forwarded-proto': 'https', 'x-forwarded-for': '203.0.113.9' },
      payload: { email: 'nobody@example.org', password: 'wrong' },
    });
    expect(response.headers['strict-transport-security']).toContain('max-age=');
    const entry = (await platform.audit.search({ action: 'login' }, { page: 1, pageSize: 1 }))
      .entries[0];
    expect(entry?.source).toBe('203.0.113.9');
  });

  it('refuses a JSON body over the limit with 413, before reading it all', async () => {
    const response = await app.inject({
      method: 'POST',
      url: '/api/v1/queries',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      payload: JSON.stringify({ dataset: 'x', padding: 'x'.repeat(2 * 1024 * 1024) }),
    });
    expect(response.statusCode).toBe(413);
    expect(response.json()).toMatchObject({ error: { code: 'payload_too_large' } });
  });

  it('never echoes a token or a password in an error', async () => {
    const secret = 'mlk_this-is-not-a-real-token-but-looks-like-one';
    const refused = await app.inject({
      method: 'GET',
      url: '/api/v1/queries',
      headers: { authorization: `Bearer ${secret}` },
    });
    expect(refused.statusCode).toBe(401);
    expect(refused.body).not.toContain(secret);
    const password = 'a-password-someone-typed-in';
    const login = await app.inject({
      method: 'POST',
      url: '/api/v1/session',
      payload: { email: 'r@example.org', password },
    });
    expect(login.body).not.toContain(password);
    const log = JSON.stringify(await platform.audit.search({}, { page: 1, pageSize: 100 }));
    expect(log).not.toContain(password);
    expect(log).not.toContain(secret);
  });
});
