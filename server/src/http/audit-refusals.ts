import type { FastifyError, FastifyReply, FastifyRequest } from 'fastify';
import { AppError, isAudited } from '../errors.ts';
import type { Platform } from '../platform.ts';
import { sessionCookie, signedInUser } from './authenticate.ts';

/**
 * An onError hook: every request refused for want of a sign-in or a right (401, 403) is audited, whichever
 * route refused it: one hook rather than a record in every use-case, so that no refusal is
 * forgotten. The entry names the route and its ids, never the query string, which can hold a
 * download link's signature.
 */
export function auditRefusal(platform: Platform) {
  return async (request: FastifyRequest, _reply: FastifyReply, error: FastifyError | Error) => {
    if (!(error instanceof AppError) || (error.status !== 401 && error.status !== 403)) return;
    if (isAudited(error)) return;
    // The web app asking "am I signed in?" on every signed-out page load is no refusal.
    const presented = Boolean(request.headers.authorization) || sessionCookie in request.cookies;
    if (!presented && request.method === 'GET' && request.routeOptions.url === '/api/v1/session') {
      return;
    }
    const user = signedInUser(request);
    await platform.audit
      .record({
        action: 'access.denied',
        actor: { userId: user?.id ?? null, name: user?.email ?? null, source: request.ip },
        target: `route:${request.method} ${request.routeOptions.url ?? '(no route)'}`,
        outcome: 'denied',
        details: { params: request.params ?? {}, reason: error.message },
      })
      .catch((failure: unknown) =>
        request.log.error({ err: failure }, 'could not audit a refused request'),
      );
  };
}
