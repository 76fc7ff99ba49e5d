import {
  errorBodySchema,
  exportLinkSchema,
  pageRequestSchema,
  queryJobPageSchema,
  queryCostSchema,
  queryJobSchema,
  resultPageSchema,
} from '@medlake/shared';
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { optionalIdentity, requireCaller, requireUser } from '../../http/authenticate.ts';
import type { Platform } from '../../platform.ts';
import { heldByAirlock } from '../../privacy/airlock.ts';
import { presentQueryJob } from '../../query/present-result.ts';
import {
  cancelQuery,
  listQueries,
  maxPageSize,
  readResultPage,
  resultPageOf,
  waitForQuery,
  waitedResultInReach,
  withResultsInReach,
} from '../../use-cases/queries/read-query.ts';
import { openDownload } from '../../use-cases/queries/download-export.ts';
import { exportQueryResult } from '../../use-cases/queries/export-query.ts';
import { priceQuery, submitQuery } from '../../use-cases/queries/submit-query.ts';
import { errorResponses } from '../../http/error-responses.ts';

const idParams = z.object({ id: z.uuid() });
const errors = errorResponses(400, 401, 403, 404, 409);

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
          querystring: z.object({
            /**
             * Wait up to this many seconds for the query to finish: a query that does answers
             * 200 with its key points and the first page of its result, in one round trip.
             */
            wait: z.coerce.number().min(0).max(30).default(0),
          }),
          response: { 200: queryJobSchema, 202: queryJobSchema, ...errors },
        },
      },
      async (request, reply) => {
        const caller = requireCaller(request);
        const started = Date.now();
        // A request that waits has its job started at once in this process, where there is room.
        const submitted = await submitQuery(platform, caller, request.body, {
          startHere: request.query.wait > 0,
        });
        // A job this process's worker started needs no wake-up.
        if (submitted.status === 'queued') options.onSubmitted?.();
        const job =
          request.query.wait > 0
            ? await waitForQuery(platform, caller.user, submitted.id, request.query.wait, submitted)
            : submitted;
        if (job.status === 'queued' || job.status === 'running') {
          return reply.status(202).send(presentQueryJob(job));
        }
        const shown = await waitedResultInReach(platform, caller.user, job, started);
        // A result the airlock holds answers with its review's state and nothing of the data.
        const firstPage =
          shown.status === 'succeeded' && shown.summary !== null && !heldByAirlock(shown)
            ? await resultPageOf(platform, shown, { page: 1, pageSize: 100 })
            : undefined;
        return reply.status(200).send({ ...presentQueryJob(shown), firstPage });
      },
    );

    app.post(
      '/v1/queries/cost',
      {
        schema: {
          summary:
            'What a query spec would cost of your privacy budget, on a dataset that answers with noise',
          tags: ['queries'],
          body: z.unknown(),
          response: { 200: queryCostSchema, ...errors },
        },
      },
      async (request) => priceQuery(platform, requireUser(request), request.body),
    );

    app.get(
      '/v1/queries',
      {
        schema: {
          summary: 'Your queries, newest first, a page at a time',
          tags: ['queries'],
          querystring: pageRequestSchema,
          response: { 200: queryJobPageSchema, ...errors },
        },
      },
      async (request) => {
        const user = requireUser(request);
        const found = await listQueries(platform, user, request.query);
        const jobs = await withResultsInReach(platform, user, found.jobs);
        return { ...request.query, total: found.total, queries: jobs.map(presentQueryJob) };
      },
    );

    app.get(
      '/v1/queries/:id',
      {
        schema: {
          summary: 'A query: its status, and when it has succeeded its key points',
          tags: ['queries'],
          params: idParams,
          querystring: z.object({
            /** Wait up to this many seconds for the query to finish before answering. */
            wait: z.coerce.number().min(0).max(30).default(0),
          }),
          response: { 200: queryJobSchema, ...errors },
        },
      },
      async (request) => {
        const user = requireUser(request);
        const job = await waitForQuery(platform, user, request.params.id, request.query.wait);
        const [shown] = await withResultsInReach(platform, user, [job]);
        return presentQueryJob(shown!);
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
        const user = requireUser(request);
        const { page, pageSize, sort, direction } = request.query;
        return readResultPage(platform, user, request.params.id, {
          page,
          pageSize,
          ...(sort ? { sort: { column: sort, direction } } : {}),
        });
      },
    );

    app.post(
      '/v1/queries/:id/exports',
      {
        schema: {
          summary: 'Export a finished result as CSV or Parquet and get an expiring download link',
          tags: ['queries'],
          params: idParams,
          body: z.object({ format: z.enum(['csv', 'parquet']) }),
          response: { 201: exportLinkSchema, ...errors },
        },
      },
      async (request, reply) => {
        const caller = requireCaller(request);
        const link = await exportQueryResult(
          platform,
          caller,
          request.params.id,
          request.body.format,
        );
        return reply
          .status(201)
          .send({ ...link, expiresAt: link.expiresAt?.toISOString() ?? null });
      },
    );

    app.get(
      '/v1/downloads/:id',
      {
        schema: {
          summary:
            'Download an export through a signed link (no token needed; the link is the key). Each use checks that the link’s owner still has access to the dataset, and is audited under who used it: the signed-in user or token holder, else anonymous',
          tags: ['queries'],
          params: idParams,
          querystring: z.object({
            user: z.uuid(),
            expires: z.coerce.number().int(),
            signature: z.string().max(128),
          }),
          response: {
            200: z.unknown().describe('the file'),
            303: z
              .unknown()
              .describe(
                'on S3: to a presigned URL of the file, made for this use and valid for MEDLAKE_DOWNLOAD_PRESIGN_TTL_SECONDS',
              ),
            403: errorBodySchema,
            404: errorBodySchema,
          },
        },
      },
      async (request, reply) => {
        // Anyone holding the link may use it, but a session or token says who that is.
        const { user, credential } = await optionalIdentity(platform, request);
        const download = await openDownload(
          platform,
          { exportId: request.params.id, ...request.query },
          { user, credential, source: request.ip },
        );
        if (download.kind === 'redirect') {
          return reply.header('cache-control', 'private, no-store').redirect(download.url, 303);
        }
        return reply
          .header(
            'content-type',
            download.format === 'csv'
              ? 'text/csv; charset=utf-8'
              : 'application/vnd.apache.parquet',
          )
          .header('content-length', download.bytes)
          .header('content-disposition', `attachment; filename="${download.fileName}"`)
          .header('cache-control', 'private, no-store')
          .send(download.body);
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
        const caller = requireCaller(request);
        const job = await cancelQuery(platform, caller, request.params.id);
        const [shown] = await withResultsInReach(platform, caller.user, [job]);
        return presentQueryJob(shown!);
      },
    );
  };
}
