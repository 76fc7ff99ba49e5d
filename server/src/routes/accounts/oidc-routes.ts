import { authMethodsSchema, errorBodySchema } from '@medlake/shared';
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { oidcSettings } from '../../accounts/oidc.ts';
import { setSessionCookie } from '../../http/authenticate.ts';
import type { Platform } from '../../platform.ts';
import { finishOidcSignIn, startOidcSignIn } from '../../use-cases/accounts/sign-in-oidc.ts';

/** Holds the state of an SSO sign-in in the browser that started it. */
const stateCookie = 'medlake_oidc_state';

/** Single sign-on through the configured OpenID Connect provider. */
export function oidcRoutes(platform: Platform): FastifyPluginAsyncZod {
  return async (app) => {
    app.get(
      '/v1/auth/methods',
      {
        schema: {
          summary: 'How one can sign in here: password, and single sign-on when configured',
          tags: ['accounts'],
          response: {
            200: authMethodsSchema,
          },
        },
      },
      async () => ({
        password: true,
        sso: oidcSettings(platform.env) ? { loginUrl: '/api/v1/oidc/login' } : null,
      }),
    );

    app.get(
      '/v1/oidc/login',
      {
        schema: {
          summary: 'Start single sign-on: redirects to the OpenID provider',
          tags: ['accounts'],
          querystring: z.object({ returnTo: z.string().max(500).optional() }),
          response: { 302: z.null(), 404: errorBodySchema, 503: errorBodySchema },
        },
      },
      async (request, reply) => {
        const started = await startOidcSignIn(platform, request.query.returnTo);
        reply.setCookie(stateCookie, started.state, {
          path: '/api/v1/oidc',
          httpOnly: true,
          sameSite: 'lax',
          secure: request.protocol === 'https',
          maxAge: 600,
        });
        return reply.redirect(started.url, 302);
      },
    );

    app.get(
      '/v1/oidc/callback',
      {
        schema: {
          summary: 'Where the OpenID provider sends the browser back; signs in and redirects',
          tags: ['accounts'],
          querystring: z.record(z.string(), z.string()),
          response: { 302: z.null(), 401: errorBodySchema, 404: errorBodySchema },
        },
      },
      async (request, reply) => {
        const signedIn = await finishOidcSignIn(platform, {
          requestUrl: request.url,
          stateCookie: request.cookies[stateCookie],
          source: request.ip,
          userAgent: request.headers['user-agent'],
        });
        reply.clearCookie(stateCookie, { path: '/api/v1/oidc' });
        setSessionCookie(request, reply, signedIn.token, signedIn.session.expiresAt);
        return reply.redirect(signedIn.returnTo, 302);
      },
    );
  };
}
