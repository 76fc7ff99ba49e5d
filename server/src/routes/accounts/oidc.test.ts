import type { SessionView } from '@medlake/shared';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  createTestApp,
  createTestPlatform,
  testActor,
  type TestPlatform,
} from '../../../test/helper.ts';
import { startTestOidcProvider, type TestOidcProvider } from '../../../test/oidc-provider.ts';
import type { App } from '../../app.ts';
import { sessionCookie } from '../../http/authenticate.ts';
import { addUser } from '../../use-cases/manage-access.ts';

const redirectUri = 'http://medlake.test/api/v1/oidc/callback';

describe('single sign-on against a real OpenID provider', () => {
  let provider: TestOidcProvider;
  let platform: TestPlatform;
  let app: App;

  /** The whole round trip as a browser makes it; the answer of medlake's callback. */
  async function signInThroughProvider(options: { returnTo?: string; stateCookie?: string } = {}) {
    const login = await app.inject({
      method: 'GET',
      url: `/api/v1/oidc/login${options.returnTo ? `?returnTo=${encodeURIComponent(options.returnTo)}` : ''}`,
    });
    expect(login.statusCode).toBe(302);
    const state = login.cookies.find((cookie) => cookie.name === 'medlake_oidc_state');
    const back = await provider.authorize(String(login.headers.location));
    const callback = await app.inject({
      method: 'GET',
      url: `${back.pathname}${back.search}`,
      cookies: { medlake_oidc_state: options.stateCookie ?? state?.value ?? '' },
    });
    const cookie = callback.cookies.find((item) => item.name === sessionCookie)?.value;
    return { callback, cookie };
  }

  const sessionOf = async (cookie: string | undefined) =>
    app.inject({
      method: 'GET',
      url: '/api/v1/session',
      cookies: cookie ? { [sessionCookie]: cookie } : {},
    });

  beforeAll(async () => {
    provider = await startTestOidcProvider(redirectUri);
    platform = await createTestPlatform('pglite', {
      MEDLAKE_OIDC_ISSUER: provider.issuer,
      MEDLAKE_OIDC_CLIENT_ID: provider.clientId,
      MEDLAKE_OIDC_CLIENT_SECRET: provider.clientSecret,
      MEDLAKE_OIDC_REDIRECT_URL: redirectUri,
      MEDLAKE_OIDC_ROLE_MAP: 'medlake-admins=admin,lab-research=researcher',
      MEDLAKE_OIDC_CREATE_ACCOUNTS: 'true',
    });
    app = await createTestApp(platform);
  });

  afterAll(async () => {
    await app.close();
    await platform.dispose();
    await provider.close();
  });

  it('offers single sign-on among the sign-in methods', async () => {
    const methods = await app.inject({ method: 'GET', url: '/api/v1/auth/methods' });
    expect(methods.json()).toEqual({ password: true, sso: { loginUrl: '/api/v1/oidc/login' } });
  });

  it('signs in an existing account by its verified e-mail, mapping its role from the groups', async () => {
    await addUser(platform, testActor, { email: 'ada@example.org', name: 'Ada', role: 'steward' });
    provider.signInAs('ada-at-idp', {
      email: 'ada@example.org',
      emailVerified: true,
      name: 'Ada L.',
      groups: ['lab-research'],
    });
    const { callback, cookie } = await signInThroughProvider({ returnTo: '/queries' });
    expect(callback.statusCode, callback.body).toBe(302);
    expect(callback.headers.location).toBe('/queries');
    const session = (await sessionOf(cookie)).json<SessionView>();
    expect(session).toMatchObject({
      method: 'oidc',
      needs: [],
      user: { email: 'ada@example.org', role: 'researcher' },
    });

    const logins = await platform.audit.search({ action: 'login' }, { page: 1, pageSize: 5 });
    expect(logins.entries[0]).toMatchObject({
      actor: 'ada@example.org',
      outcome: 'success',
      details: { method: 'oidc', role: 'researcher' },
    });
    const roleChange = await platform.audit.search(
      { action: 'user.update' },
      { page: 1, pageSize: 5 },
    );
    expect(roleChange.entries[0]?.details).toEqual({ role: { from: 'steward', to: 'researcher' } });
  });

  it('creates the account of a new person whose groups map to a role, and admins need no TOTP here', async () => {
    provider.signInAs('grace-at-idp', {
      email: 'grace@example.org',
      emailVerified: true,
      name: 'Grace H.',
      groups: ['staff', 'medlake-admins'],
    });
    const { cookie } = await signInThroughProvider();
    const session = (await sessionOf(cookie)).json<SessionView>();
    expect(session).toMatchObject({ needs: [], user: { name: 'Grace H.', role: 'admin' } });
    // The second time the account is found by its identity at the provider.
    provider.signInAs('grace-at-idp', {
      email: 'grace.hopper@example.org',
      emailVerified: true,
      name: 'Grace H.',
      groups: ['medlake-admins'],
    });
    const again = await signInThroughProvider();
    expect((await sessionOf(again.cookie)).json<SessionView>().user.email).toBe(
      'grace@example.org',
    );
  });

  it('refuses a person without an account whose groups map to no role, and audits it', async () => {
    provider.signInAs('eve-at-idp', {
      email: 'eve@example.org',
      emailVerified: true,
      name: 'Eve',
      groups: ['visitors'],
    });
    const { callback, cookie } = await signInThroughProvider();
    expect(callback.statusCode).toBe(401);
    expect(callback.json()).toMatchObject({
      error: { message: expect.stringContaining('no medlake account') },
    });
    expect(cookie).toBeUndefined();
    const refused = await platform.audit.search(
      { action: 'login', outcome: 'failure' },
      { page: 1, pageSize: 1 },
    );
    expect(refused.entries[0]).toMatchObject({
      actor: 'eve@example.org',
      details: { reason: 'no account' },
    });
  });

  it('does not link an account by an e-mail the provider has not verified', async () => {
    await addUser(platform, testActor, {
      email: 'bob@example.org',
      name: 'Bob',
      role: 'researcher',
    });
    provider.signInAs('mallory-at-idp', {
      email: 'bob@example.org',
      emailVerified: false,
      name: 'Not Bob',
      groups: [],
    });
    const { callback } = await signInThroughProvider();
    expect(callback.statusCode).toBe(401);
  });

  it('refuses a callback that another browser started', async () => {
    provider.signInAs('ada-at-idp', {
      email: 'ada@example.org',
      emailVerified: true,
      name: 'Ada',
      groups: ['lab-research'],
    });
    const { callback, cookie } = await signInThroughProvider({ stateCookie: 'someone-else' });
    expect(callback.statusCode).toBe(401);
    expect(cookie).toBeUndefined();
  });

  it('never redirects off the site after sign-in', async () => {
    provider.signInAs('ada-at-idp', {
      email: 'ada@example.org',
      emailVerified: true,
      name: 'Ada',
      groups: ['lab-research'],
    });
    const { callback } = await signInThroughProvider({ returnTo: '//evil.example/phish' });
    expect(callback.headers.location).toBe('/');
  });
});
