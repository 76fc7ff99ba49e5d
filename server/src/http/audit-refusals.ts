import type { FastifyError, FastifyReply, FastifyRequest } from 'fastify';
import type { ProbeRecorder } from '../audit/probe-recorder.ts';
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

/**
 * An onError hook that counts requests that look like probing, for the suspicious-activity
 * page: refusals (401, 403), not-found answers on a route that names an object (someone else's
 * query id, a guessed upload), and input the API refused (400: a malformed or injected spec).
 */
export function noteProbes(probes: ProbeRecorder) {
  return async (request: FastifyRequest, _reply: FastifyReply, error: FastifyError | Error) => {
    const url = request.routeOptions.url;
    if (!url?.startsWith('/api/')) return;
    const status = error instanceof AppError ? error.status : (error as FastifyError).statusCode;
    const kind =
      status === 401 || status === 403
        ? 'refused'
        : status === 404 && url.includes('/:')
          ? 'notFound'
          : status === 400
            ? 'invalid'
            : undefined;
    if (!kind) return;
    const presented = Boolean(request.headers.authorization) || sessionCookie in request.cookies;
    if (!presented && request.method === 'GET' && url === '/api/v1/session') return;
    const user = signedInUser(request);
    probes.note(
      { userId: user?.id ?? null, name: user?.email ?? null, source: request.ip },
      kind,
      `${request.method} ${url}`,
    );
  };
}
