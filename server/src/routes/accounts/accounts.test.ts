import type { AuditPage, SessionView } from '@medlake/shared';
import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  createTestApp,
  createTestPlatform,
  testActor,
  type TestPlatform,
} from '../../../test/helper.ts';
import { currentTotpCode } from '../../accounts/totp.ts';
import type { App } from '../../app.ts';
import { csrfHeader, sessionCookie } from '../../http/authenticate.ts';
import { createApiToken } from '../../use-cases/manage-access.ts';
import {
  createUserWithPassword,
  ensureFirstAdmin,
  setUserDisabled,
} from '../../use-cases/accounts/manage-users.ts';

const strongPassword = 'violet anchor drifts past seven lanterns';

type Browser = { cookie?: string; csrf?: string | null };

describe('accounts, sessions and sign-in', () => {
  let platform: TestPlatform;
  let app: App;

  /** A request as a browser makes it: the session cookie, and the CSRF header when it has one. */
  const send = (
    browser: Browser,
    method: 'GET' | 'POST' | 'DELETE',
    url: string,
    payload?: object,
    remoteAddress = '127.0.0.1',
  ) =>
    app.inject({
      method,
      url,
      remoteAddress,
      cookies: browser.cookie ? { [sessionCookie]: browser.cookie } : {},
      headers: browser.csrf ? { [csrfHeader]: browser.csrf } : {},
      ...(payload ? { payload } : {}),
    });

  async function signIn(
    email: string,
    password: string,
    code?: string,
    remoteAddress?: string,
  ): Promise<{ status: number; browser: Browser; view: SessionView; body: unknown }> {
    const response = await send(
      {},
      'POST',
      '/api/v1/session',
      { email, password, ...(code ? { code } : {}) },
      remoteAddress,
    );
    const cookie = response.cookies.find((item) => item.name === sessionCookie);
    const view = response.json<SessionView>();
    return {
      status: response.statusCode,
      browser: { cookie: cookie?.value, csrf: view.csrfToken },
      view,
      body: response.json(),
    };
  }

  async function auditEntries(filter: string): Promise<AuditPage['entries']> {
    return (
      await platform.audit.search(Object.fromEntries(new URLSearchParams(filter)), {
        page: 1,
        pageSize: 100,
      })
    ).entries.map((entry) => ({ ...entry, at: entry.at.toISOString() }));
  }

  /** A researcher with a chosen password, signed in. */
  async function researcher(email: string): Promise<Browser> {
    const made = await createUserWithPassword(platform, testActor, {
      email,
      name: 'Rita Researcher',
      role: 'researcher',
    });
    const first = await signIn(email, made.oneTimePassword);
    const changed = await send(first.browser, 'POST', '/api/v1/me/password', {
      currentPassword: made.oneTimePassword,
      newPassword: strongPassword,
    });
    expect(changed.statusCode, changed.body).toBe(200);
    return {
      cookie: changed.cookies.find((item) => item.name === sessionCookie)?.value,
      csrf: changed.json<SessionView>().csrfToken,
    };
  }

  beforeAll(async () => {
    platform = await createTestPlatform('pglite', {
      MEDLAKE_LOGIN_MAX_FAILURES: '3',
      MEDLAKE_LOGIN_MAX_FAILURES_PER_SOURCE: '6',
    });
    app = await createTestApp(platform);
  });

  afterAll(async () => {
    await app.close();
    await platform.dispose();
  });

  it('makes a first admin whose one-time password leads to a new password and an authenticator', async () => {
    const first = await ensureFirstAdmin(platform);
    expect(first?.email).toBe('admin@medlake.local');
    expect(await ensureFirstAdmin(platform)).toBeUndefined();

    const signedIn = await signIn(first!.email, first!.oneTimePassword);
    expect(signedIn.status).toBe(200);
    expect(signedIn.view.needs).toEqual(['password_change', 'totp_setup']);
    // A restricted session reaches nothing else.
    expect((await send(signedIn.browser, 'GET', '/api/v1/audit')).statusCode).toBe(403);

    const weak = await send(signedIn.browser, 'POST', '/api/v1/me/password', {
      currentPassword: first!.oneTimePassword,
      newPassword: 'password1234',
    });
    expect(weak.statusCode).toBe(400);
    expect(weak.json()).toMatchObject({
      error: { details: [{ path: 'newPassword', message: expect.stringContaining('common') }] },
    });

    const changed = await send(signedIn.browser, 'POST', '/api/v1/me/password', {
      currentPassword: first!.oneTimePassword,
      newPassword: strongPassword,
    });
    expect(changed.statusCode).toBe(200);
    const renewed: Browser = {
      cookie: changed.cookies.find((item) => item.name === sessionCookie)?.value,
      csrf: changed.json<SessionView>().csrfToken,
    };
    expect(changed.json<SessionView>().needs).toEqual(['totp_setup']);
    // The old session ended with the change.
    expect((await send(signedIn.browser, 'GET', '/api/v1/session')).statusCode).toBe(401);

    const setup = await send(renewed, 'POST', '/api/v1/me/totp');
    const { secret, uri } = setup.json<{ secret: string; uri: string }>();
    expect(uri).toMatch(/^otpauth:\/\/totp\/medlake:admin%40medlake\.local\?/);
    expect(
      (await send(renewed, 'POST', '/api/v1/me/totp/confirm', { code: '000000' })).statusCode,
    ).toBe(400);
    const confirmed = await send(renewed, 'POST', '/api/v1/me/totp/confirm', {
      code: currentTotpCode(secret),
    });
    expect(confirmed.json()).toMatchObject({ totpEnabled: true });
    expect((await send(renewed, 'GET', '/api/v1/session')).json()).toMatchObject({ needs: [] });
    expect((await send(renewed, 'GET', '/api/v1/audit')).statusCode).toBe(200);

    // From now on the code is asked for, and each code works once.
    const withoutCode = await signIn(first!.email, strongPassword);
    expect(withoutCode.status).toBe(401);
    expect(withoutCode.body).toMatchObject({ error: { details: [{ path: 'code' }] } });
    // The code used to confirm the setup is spent; the next time step's code is not.
    const replayed = await signIn(first!.email, strongPassword, currentTotpCode(secret));
    expect(replayed.status).toBe(401);
    const next = currentTotpCode(secret, new Date(Date.now() + 30_000));
    expect((await signIn(first!.email, strongPassword, next)).status).toBe(200);
  });

  it('locks an account after repeated failures, and the audit log shows it', async () => {
    await researcher('locked@example.org');
    for (let attempt = 1; attempt <= 3; attempt += 1) {
      expect(
        (await signIn('locked@example.org', `wrong guess ${attempt}`, undefined, '10.0.0.1'))
          .status,
      ).toBe(401);
    }
    // The right password no longer helps until the lock expires.
    const locked = await signIn('locked@example.org', strongPassword, undefined, '10.0.0.2');
    expect(locked.status).toBe(429);
    // Said as people say it, not as a raw UTC timestamp.
    expect(locked.body).toMatchObject({
      error: {
        code: 'account_locked',
        message: expect.stringMatching(
          /^This account is locked after too many failed sign-ins\. Try again in \d+ minutes?\.$/,
        ),
      },
    });
    // One entry per failed sign-in: the login failure with its reason, no access.denied beside it.
    const fromAddress = await platform.audit.search({}, { page: 1, pageSize: 500 });
    expect(
      fromAddress.entries
        .filter((entry) => entry.source === '10.0.0.1')
        .map((entry) => `${entry.action} ${entry.outcome}`),
    ).toEqual(['login failure', 'login failure', 'login failure']);

    const entries = (await auditEntries('actor=locked@example.org&action=login')).filter(
      (entry) => entry.outcome !== 'success',
    );
    expect(
      entries.map((entry) => [entry.outcome, entry.details.reason, entry.details.locked]),
    ).toEqual([
      ['denied', 'account locked', undefined],
      ['failure', 'wrong password', true],
      ['failure', 'wrong password', false],
      ['failure', 'wrong password', false],
    ]);

    // After the lock time, the right password works again.
    await sql`update users set locked_until = now() - interval '1 second' where email = 'locked@example.org'`.execute(
      platform.catalog.db,
    );
    expect((await signIn('locked@example.org', strongPassword, undefined, '10.0.0.2')).status).toBe(
      200,
    );
  });

  it('refuses an address that keeps failing, whichever accounts it tries', async () => {
    await researcher('innocent@example.org');
    for (let attempt = 1; attempt <= 6; attempt += 1) {
      const tried = await signIn(`nobody${attempt}@example.org`, 'guess', undefined, '10.6.6.6');
      expect(tried.status).toBe(401);
    }
    const blocked = await signIn('innocent@example.org', strongPassword, undefined, '10.6.6.6');
    expect(blocked.status).toBe(429);
    expect(blocked.body).toMatchObject({
      error: { message: expect.stringContaining('from your address') },
    });
    // The same account signs in from elsewhere.
    expect(
      (await signIn('innocent@example.org', strongPassword, undefined, '10.7.7.7')).status,
    ).toBe(200);
    const entries = await auditEntries('action=login&outcome=denied');
    expect(entries[0]).toMatchObject({
      source: '10.6.6.6',
      details: { reason: 'too many failed sign-ins from this address' },
    });
  });

  it('answers an unknown e-mail exactly like a wrong password', async () => {
    await researcher('known@example.org');
    const unknown = await signIn('unknown@example.org', 'whatever it is', undefined, '10.1.1.1');
    const wrong = await signIn('known@example.org', 'whatever it is', undefined, '10.1.1.2');
    expect(unknown.status).toBe(401);
    expect(unknown.body).toEqual(wrong.body);
  });

  it('needs the CSRF header for writes with a session cookie', async () => {
    const browser = await researcher('csrf@example.org');
    const spec = { dataset: 'none' };
    const forged = await send({ cookie: browser.cookie }, 'POST', '/api/v1/queries', spec);
    expect(forged.statusCode).toBe(403);
    expect(forged.json()).toMatchObject({ error: { message: expect.stringContaining('CSRF') } });
    const wrongToken = await send(
      { cookie: browser.cookie, csrf: 'x'.repeat(32) },
      'POST',
      '/api/v1/queries',
      spec,
    );
    expect(wrongToken.statusCode).toBe(403);
    // With the header the request gets through to the query service, which checks the spec.
    const through = await send(browser, 'POST', '/api/v1/queries', spec);
    expect(through.statusCode).toBe(400);
    expect(through.json()).toMatchObject({
      error: { code: 'invalid_spec', message: expect.stringContaining('query spec') },
    });
    // Reads need no header.
    expect((await send({ cookie: browser.cookie }, 'GET', '/api/v1/queries')).statusCode).toBe(200);
  });

  it('ends a session at sign-out, when idle too long, at its absolute expiry and when the user is disabled', async () => {
    const out = await researcher('out@example.org');
    expect((await send(out, 'DELETE', '/api/v1/session')).statusCode).toBe(204);
    expect((await send(out, 'GET', '/api/v1/session')).statusCode).toBe(401);

    const idle = await researcher('idle@example.org');
    await sql`update sessions set last_seen_at = now() - interval '31 minutes' where revoked_at is null and user_id = (select id from users where email = 'idle@example.org')`.execute(
      platform.catalog.db,
    );
    expect((await send(idle, 'GET', '/api/v1/session')).statusCode).toBe(401);

    const old = await researcher('old@example.org');
    await sql`update sessions set expires_at = now() - interval '1 second' where user_id = (select id from users where email = 'old@example.org')`.execute(
      platform.catalog.db,
    );
    expect((await send(old, 'GET', '/api/v1/session')).statusCode).toBe(401);

    const gone = await researcher('gone@example.org');
    await setUserDisabled(platform, testActor, { email: 'gone@example.org', disabled: true });
    expect((await send(gone, 'GET', '/api/v1/session')).statusCode).toBe(401);
    expect((await signIn('gone@example.org', strongPassword)).status).toBe(401);
  });

  it('makes scoped personal tokens in a session; a token cannot make more', async () => {
    const browser = await researcher('tokens@example.org');
    const refused = await send(browser, 'POST', '/api/v1/me/tokens', {
      name: 'x',
      scopes: ['upload'],
    });
    expect(refused.statusCode).toBe(400);
    const made = await send(browser, 'POST', '/api/v1/me/tokens', { name: 'notebook', days: 7 });
    expect(made.statusCode).toBe(201);
    const { id, token, scopes } = made.json<{ id: string; token: string; scopes: string[] }>();
    expect(scopes).toEqual(['query']);
    const withToken = (method: 'GET' | 'POST', url: string) =>
      app.inject({
        method,
        url,
        headers: { authorization: `Bearer ${token}` },
        payload: method === 'POST' ? { name: 'y' } : undefined,
      });
    expect((await withToken('GET', '/api/v1/datasets')).statusCode).toBe(200);
    expect((await withToken('POST', '/api/v1/me/tokens')).statusCode).toBe(403);
    const listed = (await send(browser, 'GET', '/api/v1/me/tokens')).json<{
      tokens: Array<{ id: string }>;
    }>();
    expect(listed.tokens.map((item) => item.id)).toEqual([id]);
    expect(JSON.stringify(listed)).not.toContain(token);
    expect((await send(browser, 'DELETE', `/api/v1/me/tokens/${id}`)).statusCode).toBe(204);
    expect((await withToken('GET', '/api/v1/datasets')).statusCode).toBe(401);
  });

  it('checks a token’s scope on every route', async () => {
    await createUserWithPassword(platform, testActor, {
      email: 'steward@example.org',
      name: 'S',
      role: 'steward',
    });
    const { token } = await createApiToken(platform, testActor, {
      email: 'steward@example.org',
      name: 'query only',
      days: 1,
      scopes: ['query'],
    });
    const upload = await app.inject({
      method: 'POST',
      url: '/api/uploads?dataset=x&hospital=y&month=2024-01&fileName=a.csv',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'text/csv' },
      payload: 'a,b\n',
    });
    expect(upload.statusCode).toBe(403);
    expect(upload.json()).toMatchObject({
      error: { message: expect.stringContaining('"upload" scope') },
    });
  });
});
