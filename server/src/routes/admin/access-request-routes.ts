import {
  accessRequestListSchema,
  accessRequestViewSchema,
  newAccessRequestSchema,
} from '@medlake/shared';
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { requireCaller } from '../../http/authenticate.ts';
import type { Platform } from '../../platform.ts';
import { listOwnAccessRequests, requestAccess } from '../../use-cases/access/access-requests.ts';
import { presentAccessRequest } from './present-access.ts';
import { errorResponses } from '../../http/error-responses.ts';

const errors = errorResponses(400, 401, 403, 404, 409);

/** A researcher's own access requests: make one, and see the decisions. */
export function accessRequestRoutes(platform: Platform): FastifyPluginAsyncZod {
  return async (app) => {
    app.post(
      '/v1/access-requests',
      {
        schema: {
          summary: 'Ask for access to a dataset, accepting its data-use terms',
          tags: ['access'],
          body: newAccessRequestSchema,
          response: { 201: accessRequestViewSchema, ...errors },
        },
      },
      async (request, reply) =>
        reply
          .status(201)
          .send(
            presentAccessRequest(
              await requestAccess(platform, requireCaller(request), request.body),
            ),
          ),
    );

    app.get(
      '/v1/access-requests',
      {
        schema: {
          summary: 'Your access requests and their decisions, newest first',
          tags: ['access'],
          response: { 200: accessRequestListSchema, ...errors },
        },
      },
      async (request) => {
        const caller = requireCaller(request);
        return {
          requests: (await listOwnAccessRequests(platform, caller)).map((item) =>
            presentAccessRequest(item, caller.user.email),
          ),
        };
      },
    );
  };
}
