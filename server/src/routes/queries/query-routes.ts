import { errorBodySchema, queryJobSchema, resultPageSchema } from '@medlake/shared';
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { requireUser } from '../../http/authenticate.ts';
import type { Platform } from '../../platform.ts';
import { presentQueryJob } from '../../query/present-result.ts';
import {
  cancelQuery,
  getQuery,
  listQueries,
  maxPageSize,
  readResultPage,
} from '../../use-cases/queries/read-query.ts';
import { submitQuery } from '../../use-cases/queries/submit-query.ts';

const idParams = z.object({ id: z.uuid() });
const errors = {
  400: errorBodySchema,
  401: errorBodySchema,
  403: errorBodySchema,
  404: errorBodySchema,
  409: errorBodySchema,
};

/**
 * Queries: submitted as a query spec, run as jobs, read back as a summary and pages. Every
 * route answers for the signed-in user only; another user's query does not exist for them.
 */
export function queryRoutes(
  platform: Platform,
  options: { onSubmitted?: () => void } = {},
): FastifyPluginAsyncZod {
  return async (app) => {
    app.post(
      '/v1/queries',
      {
        schema: {
          summary:
            'Run a query: the body is a query spec (docs/query-spec.md, `medlake query --schema`)',
          tags: ['queries'],
          body: z.unknown(),
          response: { 202: queryJobSchema, ...errors },
        },
      },
      async (request, reply) => {
        const user = await requireUser(platform, request);
        const job = await submitQuery(platform, user, request.body);
        options.onSubmitted?.();
        return reply.status(202).send(presentQueryJob(job));
      },
    );

    app.get(
      '/v1/queries',
      {
        schema: {
          summary: 'Your latest queries, newest first',
          tags: ['queries'],
          response: { 200: z.object({ queries: z.array(queryJobSchema) }), ...errors },
        },
      },
      async (request) => {
        const user = await requireUser(platform, request);
        return { queries: (await listQueries(platform, user)).map(presentQueryJob) };
      },
    );

    app.get(
      '/v1/queries/:id',
      {
        schema: {
          summary: 'A query: its status, and when it has succeeded its key points',
          tags: ['queries'],
          params: idParams,
          response: { 200: queryJobSchema, ...errors },
        },
      },
      async (request) => {
        const user = await requireUser(platform, request);
        return presentQueryJob(await getQuery(platform, user, request.params.id));
      },
    );

    app.get(
      '/v1/queries/:id/results',
      {
        schema: {
          summary: 'One page of a finished query’s result, sorted on the server',
          tags: ['queries'],
          params: idParams,
          querystring: z.object({
            page: z.coerce.number().int().min(1).default(1),
            pageSize: z.coerce.number().int().min(1).max(maxPageSize).default(100),
            sort: z
              .string()
              .regex(/^[a-z][a-z0-9_]{0,62}$/)
              .optional(),
            direction: z.enum(['asc', 'desc']).default('asc'),
          }),
          response: { 200: resultPageSchema, ...errors },
        },
      },
      async (request) => {
        const user = await requireUser(platform, request);
        const { page, pageSize, sort, direction } = request.query;
        return readResultPage(platform, user, request.params.id, {
          page,
          pageSize,
          ...(sort ? { sort: { column: sort, direction } } : {}),
        });
      },
    );

    app.delete(
      '/v1/queries/:id',
      {
        schema: {
          summary: 'Cancel a queued or running query',
          tags: ['queries'],
          params: idParams,
          response: { 200: queryJobSchema, ...errors },
        },
      },
      async (request) => {
        const user = await requireUser(platform, request);
        return presentQueryJob(await cancelQuery(platform, user, request.params.id));
      },
    );
  };
}
