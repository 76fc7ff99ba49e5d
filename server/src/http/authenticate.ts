import { timingSafeEqual } from 'node:crypto';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { sessionsRepository, type Session } from '../catalog/sessions-repository.ts';
import { userOfToken } from '../catalog/held-facts.ts';
import type { User } from '../catalog/users-repository.ts';
import type { Caller } from '../caller.ts';
import { AppError } from '../errors.ts';
import type { Platform } from '../platform.ts';
import {
  assertRouteAllowed,
  routeRuleFor,
  sessionNeeds,
  type RequestIdentity,
  type RouteRule,
} from '../policy.ts';

export const sessionCookie = 'medlake_session';
/** The header a browser sends its session's CSRF token in, on every write. */
export const csrfHeader = 'x-csrf-token';

export type Identity = RequestIdentity & { session: Session | null };

/** Who each request turned out to be, set by the route-access hook. */
const identities = new WeakMap<FastifyRequest, Identity>();

const safeMethods = new Set(['GET', 'HEAD', 'OPTIONS']);

/** The OpenAPI document and its viewer: any signed-in user, with a session or any token. */
const docsRule: RouteRule = { who: 'signed-in', scope: null };

/**
 * An onRequest hook for the API: finds who the request speaks for and checks the route's rule
 * (policy.ts) before anything else happens, even before an upload's body is read. A route
 * without a rule is refused. What a user may reach inside an allowed route (datasets through
 * grants, their own queries) is checked further in.
 */
export function routeAccess(platform: Platform) {
  return async (request: FastifyRequest) => {
    const url = request.routeOptions.url;
    // Not the API (the web app's files), or an unknown path (answered 404).
    if (!url?.startsWith('/api/')) return;
    // The API's description lists every route, admin ones included: for signed-in users only.
    if (url === '/api/docs' || url.startsWith('/api/docs/')) {
      assertRouteAllowed(docsRule, await identify(platform, request));
      return;
    }
    const rule = routeRuleFor(request.method, url);
    if (!rule) {
      throw new AppError('route_closed', 'This route has no access rule, so nobody may call it');
    }
    if (rule.who === 'anyone') return;
    const identity = await identify(platform, request);
    if (identity) identities.set(request, identity);
    assertRouteAllowed(rule, identity);
  };
}

/**
 * Who a request speaks for: a personal API token (`Authorization: Bearer mlk_…`, for scripts)
 * or a browser session cookie. A cookie alone does not authorize a write: the session's CSRF
 * token must come along in a header, which a page of another site cannot read or send.
 */
async function identify(
  platform: Platform,
  request: FastifyRequest,
): Promise<Identity | undefined> {
  const header = request.headers.authorization;
  if (header) {
    const match = /^Bearer\s+(\S+)$/i.exec(header);
    const found = match?.[1]
      ? await userOfToken(platform.catalog, match[1], new Date())
      : undefined;
    if (!found) {
      throw new AppError('token_invalid', 'The API token is unknown, expired or revoked');
    }
    return { user: found.user, scopes: found.scopes, needs: [], session: null };
  }
  const token = request.cookies[sessionCookie];
  if (!token) return undefined;
  const now = new Date();
  const idleMs = platform.env.MEDLAKE_SESSION_IDLE_MINUTES * 60_000;
  const found = await sessionsRepository(platform.catalog.db).byToken(
    token,
    now,
    new Date(now.getTime() - idleMs),
  );
  if (!found) throw new AppError('session_expired', 'Your session has ended; sign in again');
  const identity: Identity = {
    user: found.user,
    scopes: null,
    needs: sessionNeeds(found.user, found.session.method),
    session: found.session,
  };
  if (!safeMethods.has(request.method)) {
    const sent = request.headers[csrfHeader];
    const given = Buffer.from(typeof sent === 'string' ? sent : '');
    const expected = Buffer.from(found.session.csrfToken);
    if (given.length !== expected.length || !timingSafeEqual(given, expected)) {
      identities.set(request, identity);
      throw new AppError(
        'csrf_token_missing',
        `A change made with a session cookie needs the session's CSRF token in the ${csrfHeader} header`,
      );
    }
  }
  return identity;
}

/** Who the request speaks for; only on routes whose rule requires a sign-in. */
export function requireIdentity(request: FastifyRequest): Identity {
  const identity = identities.get(request);
  // The route-access hook guarantees it on signed-in routes; anything else is a wrong rule.
  if (!identity) throw new Error(`${request.routeOptions.url} reads the user but allows anyone`);
  return identity;
}

/** The signed-in user. */
export function requireUser(request: FastifyRequest): User {
  return requireIdentity(request).user;
}

/** The signed-in user and the client's address, for use-cases that audit what they do. */
export function requireCaller(request: FastifyRequest): Caller {
  return { user: requireUser(request), source: request.ip };
}

/**
 * Who a request on a route open to anyone speaks for, when it carries a token or a session
 * (a download link used by a signed-in browser, say): `credential` says which. A token or
 * session that is no longer good makes the request anonymous rather than refused, since such a
 * route does not need one; `credential: 'unrecognised'` keeps the fact for the audit log.
 */
export async function optionalIdentity(
  platform: Platform,
  request: FastifyRequest,
): Promise<{ user: User | null; credential: 'token' | 'session' | 'unrecognised' | null }> {
  try {
    const identity = await identify(platform, request);
    if (!identity) return { user: null, credential: null };
    return { user: identity.user, credential: identity.session ? 'session' : 'token' };
  } catch (error) {
    if (error instanceof AppError && error.status === 401) {
      return { user: null, credential: 'unrecognised' };
    }
    throw error;
  }
}

/** The user the request was signed in as, if it got that far (for auditing refusals). */
export function signedInUser(request: FastifyRequest): User | undefined {
  return identities.get(request)?.user;
}

/**
 * Sets the session cookie: not readable by scripts, sent to this site only (and on top-level
 * navigation to it, so that the OpenID provider's redirect back lands signed in), over https
 * only when the server is reached over https.
 */
export function setSessionCookie(
  request: FastifyRequest,
  reply: FastifyReply,
  token: string,
  expiresAt: Date,
): void {
  reply.setCookie(sessionCookie, token, {
    path: '/',
    httpOnly: true,
    sameSite: 'lax',
    secure: request.protocol === 'https',
    expires: expiresAt,
  });
}

export function clearSessionCookie(reply: FastifyReply): void {
  reply.clearCookie(sessionCookie, { path: '/' });
}
