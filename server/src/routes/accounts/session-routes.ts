import { sessionViewSchema, signInSchema } from '@medlake/shared';
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { actorOf } from '../../caller.ts';
import { clearSessionCookie, requireIdentity, setSessionCookie } from '../../http/authenticate.ts';
import type { Platform } from '../../platform.ts';
import { AppError } from '../../errors.ts';
import { signInWithPassword, signOut } from '../../use-cases/accounts/sign-in.ts';
import { presentSession } from './present-account.ts';
import { errorResponses } from '../../http/error-responses.ts';

const errors = errorResponses(400, 401, 403, 429);

/** Signing in and out of the web app: a session cookie and its CSRF token. */
export function sessionRoutes(platform: Platform): FastifyPluginAsyncZod {
  return async (app) => {
    app.post(
      '/v1/session',
      {
        schema: {
          summary: 'Sign in with e-mail and password (and authenticator code); sets the cookie',
          tags: ['accounts'],
          body: signInSchema,
          response: { 200: sessionViewSchema, ...errors },
        },
      },
      async (request, reply) => {
        const signedIn = await signInWithPassword(platform, {
          ...request.body,
          source: request.ip,
          userAgent: request.headers['user-agent'],
        });
        setSessionCookie(request, reply, signedIn.token, signedIn.session.expiresAt);
        return presentSession(signedIn.user, signedIn.session, signedIn.needs);
      },
    );

    app.get(
      '/v1/session',
      {
        schema: {
          summary: 'Who you are signed in as, and what the session must do first',
          tags: ['accounts'],
          response: { 200: sessionViewSchema, ...errors },
        },
      },
      async (request) => {
        const found = requireIdentity(request);
        return presentSession(found.user, found.session, found.needs);
      },
    );

    app.delete(
      '/v1/session',
      {
        schema: {
          summary: 'Sign out: ends the session and clears the cookie',
          tags: ['accounts'],
          response: { 204: z.null(), ...errors },
        },
      },
      async (request, reply) => {
        const found = requireIdentity(request);
        if (!found.session) {
          throw new AppError('invalid_input', 'Only a session signs out; revoke a token instead');
        }
        await signOut(platform, found.session, actorOf({ user: found.user, source: request.ip }));
        clearSessionCookie(reply);
        return reply.status(204).send(null);
      },
    );
  };
}
