import { randomUUID } from 'node:crypto';
import fastifyCookie from '@fastify/cookie';
import Fastify from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  createTestApp,
  createTestPlatform,
  testActor,
  type TestPlatform,
} from '../../test/helper.ts';
import { hashPassword } from '../accounts/passwords.ts';
import { newTotpSecret } from '../accounts/totp.ts';
import type { App } from '../app.ts';
import { credentialsRepository } from '../catalog/credentials-repository.ts';
import { usersRepository } from '../catalog/users-repository.ts';
import { openSession } from '../use-cases/accounts/sign-in.ts';
import type { UserRole } from '../catalog/schema.ts';
import { routeRuleFor, scopesOfRole, type RouteRule } from '../policy.ts';
import { addUser, createApiToken, userRoles } from '../use-cases/manage-access.ts';
import { csrfHeader, routeAccess, sessionCookie } from './authenticate.ts';
import { handleError } from './error-handler.ts';

/** How a caller presents itself: nothing, a personal token, or a browser session. */
type Caller =
  | { kind: 'anonymous' }
  | { kind: 'token'; role: UserRole; token: string }
  | { kind: 'session'; role: UserRole; email: string; restricted: boolean };

/**
 * What the table in policy.ts says should happen to a caller on a route: let through, or
 * refused with 401 or 403 before the route runs.
 */
function expected(rule: RouteRule, caller: Caller): 'allowed' | 401 | 403 {
  if (rule.who === 'anyone') return 'allowed';
  if (caller.kind === 'anonymous') return 401;
  if (caller.kind === 'session' && caller.restricted && !rule.whileRestricted) return 403;
  if (rule.who !== 'signed-in' && !rule.who.includes(caller.role)) return 403;
  if (caller.kind === 'token' && rule.sessionOnly) return 403;
  return 'allowed';
}

/** The refusals the route rules give, as opposed to a route's own 403s (a missing grant). */
const ruleRefusal =
  /^(Sign in first|This needs the .* role|This is done signed in|The API token lacks|Choose a new password first|Set up your authenticator app first)/;

describe('route access matrix: every API route, as every role and anonymous', () => {
  let platform: TestPlatform;
  let app: App;
  const callers: Caller[] = [{ kind: 'anonymous' }];

  beforeAll(async () => {
    platform = await createTestPlatform();
    for (const role of userRoles) {
      const email = `${role}@example.org`;
      const user = await addUser(platform, testActor, { email, name: role, role });
      const credentials = credentialsRepository(platform.catalog.db);
      await credentials.setPassword(
        user.id,
        await hashPassword('seven quiet harbours under amber light'),
        false,
        new Date(),
      );
      if (role === 'admin') {
        // Admins without a second factor are restricted; this one has one.
        await credentials.setPendingTotp(user.id, platform.totpSecrets.seal(newTotpSecret()));
        await credentials.enableTotp(user.id, new Date(), 0);
      }
      // A token with every scope the role can use, so that only the role decides.
      const { token } = await createApiToken(platform, testActor, { email, name: 'm', days: 1 });
      callers.push({ kind: 'token', role, token });
      callers.push({ kind: 'session', role, email, restricted: false });
    }
    // A researcher whose password was reset by an admin: nothing but changing it.
    const reset = await addUser(platform, testActor, {
      email: 'reset@example.org',
      name: 'reset',
      role: 'researcher',
    });
    await credentialsRepository(platform.catalog.db).setPassword(
      reset.id,
      await hashPassword('seven quiet harbours under amber light'),
      true,
      new Date(),
    );
    callers.push({
      kind: 'session',
      role: 'researcher',
      email: 'reset@example.org',
      restricted: true,
    });
    app = await createTestApp(platform);
  });

  afterAll(async () => {
    await app.close();
    await platform.dispose();
  });

  /** A fresh session each time: a route such as sign-out may end the one it is called with. */
  async function openFor(email: string): Promise<{ cookie: string; csrf: string }> {
    const user = await usersRepository(platform.catalog.db).byEmail(email);
    const opened = await openSession(platform, user!, 'password', { source: 'test' }, new Date());
    return { cookie: opened.token, csrf: opened.session.csrfToken };
  }

  async function call(caller: Caller, method: string, url: string) {
    const headers: Record<string, string> = {};
    const cookies: Record<string, string> = {};
    if (caller.kind === 'token') headers.authorization = `Bearer ${caller.token}`;
    if (caller.kind === 'session') {
      const session = await openFor(caller.email);
      cookies[sessionCookie] = session.cookie;
      headers[csrfHeader] = session.csrf;
    }
    const path = url.replace(/:[a-z]+/g, (name) => (name === ':id' ? randomUUID() : 'x'));
    return app.inject({
      method: method as 'GET',
      url: path,
      headers,
      cookies,
      ...(method === 'GET' || method === 'DELETE' ? {} : { payload: {} }),
    });
  }

  it('has a rule for every route', () => {
    const missing = app.apiRoutes.filter((route) => !routeRuleFor(route.method, route.url));
    expect(missing).toEqual([]);
    expect(app.apiRoutes.length).toBeGreaterThan(20);
  });

  it('lets through and refuses exactly as the rules say', async () => {
    const mismatches: string[] = [];
    for (const route of app.apiRoutes) {
      const rule = routeRuleFor(route.method, route.url);
      if (!rule) continue;
      for (const caller of callers) {
        const want = expected(rule, caller);
        const response = await call(caller, route.method, route.url);
        const message = response.headers['content-type']?.includes('json')
          ? ((response.json() as { error?: { message?: string } }).error?.message ?? '')
          : '';
        const refusedByRule =
          response.statusCode === 401 || (response.statusCode === 403 && ruleRefusal.test(message));
        const got = refusedByRule ? response.statusCode : 'allowed';
        if (got !== want) {
          const who = caller.kind === 'anonymous' ? 'anonymous' : `${caller.role} ${caller.kind}`;
          mismatches.push(
            `${route.method} ${route.url} as ${who}${caller.kind === 'session' && caller.restricted ? ' (restricted)' : ''}: expected ${want}, got ${response.statusCode} ${message}`,
          );
        }
      }
    }
    expect(mismatches).toEqual([]);
  }, 120_000);

  it('refuses a route without a rule to everyone, signed in or not', async () => {
    const bare = Fastify();
    await bare.register(fastifyCookie);
    bare.setErrorHandler(handleError);
    bare.addHook('onRequest', routeAccess(platform));
    bare.get('/api/v1/unruled', async () => ({ secret: true }));
    const token = callers.find((caller) => caller.kind === 'token' && caller.role === 'admin');
    for (const headers of [
      {},
      { authorization: `Bearer ${token?.kind === 'token' ? token.token : ''}` },
    ]) {
      const response = await bare.inject({ method: 'GET', url: '/api/v1/unruled', headers });
      expect(response.statusCode).toBe(403);
      expect(response.body).not.toContain('secret');
    }
    await bare.close();
  });

  it('gives each role the token scopes it can use', () => {
    expect(scopesOfRole('researcher')).toEqual(['query']);
    expect(scopesOfRole('steward')).toEqual(['query', 'upload']);
    expect(scopesOfRole('auditor')).toEqual(['query', 'audit']);
    expect(scopesOfRole('admin')).toEqual(['query', 'upload', 'audit', 'admin']);
  });
});
