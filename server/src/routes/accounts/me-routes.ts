import {
  apiTokenListSchema,
  madeApiTokenSchema,
  newApiTokenSchema,
  totpSetupSchema,
  sessionViewSchema,
  userViewSchema,
} from '@medlake/shared';
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { requireCaller, setSessionCookie } from '../../http/authenticate.ts';
import type { Platform } from '../../platform.ts';
import {
  beginTotpSetup,
  changeOwnPassword,
  confirmTotpSetup,
} from '../../use-cases/accounts/own-account.ts';
import {
  createOwnToken,
  listOwnTokens,
  revokeOwnToken,
} from '../../use-cases/accounts/own-tokens.ts';
import { presentSession, presentUser } from './present-account.ts';
import { errorResponses } from '../../http/error-responses.ts';

const errors = errorResponses(400, 401, 403, 404, 409);

/** The signed-in user's own account: password, authenticator app and API tokens. */
export function meRoutes(platform: Platform): FastifyPluginAsyncZod {
  return async (app) => {
    app.post(
      '/v1/me/password',
      {
        schema: {
          summary: 'Change your password; every other session ends, this one is renewed',
          tags: ['accounts'],
          body: z.object({
            currentPassword: z.string().min(1).max(1024),
            newPassword: z.string().min(1).max(1024),
          }),
          response: { 200: sessionViewSchema, ...errors },
        },
      },
      async (request, reply) => {
        const renewed = await changeOwnPassword(platform, requireCaller(request), {
          ...request.body,
          userAgent: request.headers['user-agent'],
        });
        setSessionCookie(request, reply, renewed.token, renewed.session.expiresAt);
        return presentSession(renewed.user, renewed.session, renewed.needs);
      },
    );

    app.post(
      '/v1/me/totp',
      {
        schema: {
          summary: 'Start setting up an authenticator app: a secret to scan, confirmed next',
          tags: ['accounts'],
          response: { 200: totpSetupSchema, ...errors },
        },
      },
      async (request) => beginTotpSetup(platform, requireCaller(request)),
    );

    app.post(
      '/v1/me/totp/confirm',
      {
        schema: {
          summary: 'Confirm the authenticator app with a code from it; from now on it is asked',
          tags: ['accounts'],
          body: z.object({ code: z.string().regex(/^\d{6}$/, 'six digits') }),
          response: { 200: userViewSchema, ...errors },
        },
      },
      async (request) =>
        presentUser(await confirmTotpSetup(platform, requireCaller(request), request.body.code)),
    );

    app.get(
      '/v1/me/tokens',
      {
        schema: {
          summary: 'Your personal API tokens (never the tokens themselves)',
          tags: ['accounts'],
          response: { 200: apiTokenListSchema, ...errors },
        },
      },
      async (request) => ({
        tokens: (await listOwnTokens(platform, requireCaller(request))).map((token) => ({
          ...token,
          createdAt: token.createdAt.toISOString(),
          expiresAt: token.expiresAt.toISOString(),
          lastUsedAt: token.lastUsedAt?.toISOString() ?? null,
        })),
      }),
    );

    app.post(
      '/v1/me/tokens',
      {
        schema: {
          summary: 'Make a personal API token; it is shown in this answer only',
          tags: ['accounts'],
          body: newApiTokenSchema,
          response: {
            201: madeApiTokenSchema,
            ...errors,
          },
        },
      },
      async (request, reply) => {
        const created = await createOwnToken(platform, requireCaller(request), request.body);
        return reply.status(201).send({ ...created, expiresAt: created.expiresAt.toISOString() });
      },
    );

    app.delete(
      '/v1/me/tokens/:id',
      {
        schema: {
          summary: 'Revoke one of your API tokens',
          tags: ['accounts'],
          params: z.object({ id: z.uuid() }),
          response: { 204: z.null(), ...errors },
        },
      },
      async (request, reply) => {
        await revokeOwnToken(platform, requireCaller(request), request.params.id);
        return reply.status(204).send(null);
      },
    );
  };
}
