import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
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
import { handleError } from '../error-handler.ts';

/** How a caller presents itself: nothing, a personal token, or a browser session. */
type Caller =
  | { kind: 'anonymous' }
  | { kind: 'token'; role: UserRole; token: string }
  | { kind: 'session'; role: UserRole; email: string; restricted: boolean };

/** Who may call a route, as the role table in docs/accounts.md says: 'anonymous' and roles. */
type Allowed = ReadonlySet<UserRole | 'anonymous'>;

/**
 * The role table of docs/accounts.md, by "METHOD /path": the documented contract that the
 * matrix below holds the server to.
 */
function readRoleTable(): Map<string, Allowed> {
  const doc = readFileSync(new URL('../../../docs/accounts.md', import.meta.url), 'utf8');
  const start = doc.indexOf('<!-- role-table:start -->');
  const end = doc.indexOf('<!-- role-table:end -->');
  if (start < 0 || end < start) throw new Error('docs/accounts.md has no role table');
  const cellsOf = (line: string) =>
    line
      .trim()
      .replace(/^\||\|$/g, '')
      .split(/(?<!\\)\|/)
      .map((cell) => cell.trim());
  const lines = doc
    .slice(start, end)
    .split('\n')
    .filter((line) => line.startsWith('|'));
  const header = cellsOf(lines[0] ?? '');
  const table = new Map<string, Allowed>();
  for (const line of lines.slice(2)) {
    const cells = cellsOf(line);
    const route = cells[0]?.replace(/`/g, '') ?? '';
    if (table.has(route)) throw new Error(`docs/accounts.md lists ${route} twice`);
    const allowed = new Set<UserRole | 'anonymous'>();
    header.forEach((column, i) => {
      if (i >= 2 && cells[i] === '✓') allowed.add(column as UserRole | 'anonymous');
    });
    table.set(route, allowed);
  }
  return table;
}

/** Who a rule in policy.ts lets through, in the role table's terms. */
function allowedByRule(rule: RouteRule): Allowed {
  if (rule.who === 'anyone') return new Set(['anonymous', ...userRoles]);
  return new Set(rule.who === 'signed-in' ? userRoles : rule.who);
}

/**
 * What should happen to a caller on a route, by the role table (who) and the rule's session
 * conditions: let through, or refused with 401 or 403 before the route runs.
 */
function expected(allowed: Allowed, rule: RouteRule, caller: Caller): 'allowed' | 401 | 403 {
  if (allowed.has('anonymous')) return 'allowed';
  if (caller.kind === 'anonymous') return 401;
  if (rule.who === 'anyone') return 'allowed';
  if (caller.kind === 'session' && caller.restricted && !rule.whileRestricted) return 403;
  if (!allowed.has(caller.role)) return 403;
  if (caller.kind === 'token' && rule.sessionOnly) return 403;
  return 'allowed';
}

/**
 * What the auditor may do besides GET: manage their own sign-in and check the log's chain.
 * Anything else an auditor could call would be a change they could make.
 */
const auditorNonReads = new Set([
  'POST /api/v1/session',
  'DELETE /api/v1/session',
  'POST /api/v1/me/password',
  'POST /api/v1/me/totp',
  'POST /api/v1/me/totp/confirm',
  'POST /api/v1/me/tokens',
  'DELETE /api/v1/me/tokens/:id',
  'POST /api/v1/audit/verify',
]);

/** The refusals the route rules give, as opposed to a route's own 403s (a missing grant). */
const ruleRefusal =
  /^(Sign in first|This needs the .* role|This is done signed in|The API token lacks|Choose a new password first|Set up your authenticator app first)/;

describe('route access matrix: every API route, as every role and anonymous, as docs/accounts.md says', () => {
  let platform: TestPlatform;
  let app: App;
  const callers: Caller[] = [{ kind: 'anonymous' }];
  const roleTable = readRoleTable();

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

  it('has a row for every route in the role table of docs/accounts.md, agreeing with the rules', () => {
    const served = app.apiRoutes.map((route) => `${route.method} ${route.url}`).sort();
    expect([...roleTable.keys()].sort()).toEqual(served);
    const disagreements = app.apiRoutes.flatMap((route) => {
      const key = `${route.method} ${route.url}`;
      const rule = routeRuleFor(route.method, route.url);
      const documented = [...(roleTable.get(key) ?? [])].sort();
      const ruled = rule ? [...allowedByRule(rule)].sort() : [];
      return documented.join() === ruled.join()
        ? []
        : [`${key}: the table says ${documented.join(', ')}; policy.ts ${ruled.join(', ')}`];
    });
    expect(disagreements).toEqual([]);
  });

  it('lets the auditor read and change nothing but their own sign-in', () => {
    const writes = [...roleTable]
      .filter(([route, allowed]) => allowed.has('auditor') && !route.startsWith('GET '))
      .map(([route]) => route)
      .filter((route) => !auditorNonReads.has(route) && !roleTable.get(route)?.has('anonymous'));
    expect(writes).toEqual([]);
    expect(roleTable.get('POST /api/v1/access-requests')?.has('auditor')).toBe(false);
  });

  it('lets through and refuses exactly as the rules say', async () => {
    const mismatches: string[] = [];
    for (const route of app.apiRoutes) {
      const rule = routeRuleFor(route.method, route.url);
      const allowed = roleTable.get(`${route.method} ${route.url}`);
      if (!rule || !allowed) continue;
      for (const caller of callers) {
        const want = expected(allowed, rule, caller);
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
