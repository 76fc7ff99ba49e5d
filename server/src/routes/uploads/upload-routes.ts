import type { Readable } from 'node:stream';
import { errorBodySchema, ingestProblemSchema, qualityReportSchema } from '@medlake/shared';
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { actorOf } from '../../caller.ts';
import { requireCaller } from '../../http/authenticate.ts';
import type { Platform } from '../../platform.ts';
import { ingestUpload } from '../../use-cases/ingest-upload.ts';

const uploadQuery = z.object({
  dataset: z.string().min(1),
  hospital: z.string().min(1),
  month: z.string().regex(/^\d{4}-(0[1-9]|1[0-2])$/, 'must be YYYY-MM'),
  fileName: z.string().min(1).max(255).default('upload.csv'),
});

const uploadResult = z.discriminatedUnion('status', [
  z.object({
    status: z.literal('published'),
    jobId: z.string(),
    releaseId: z.string(),
    rows: z.number(),
    rejectedRows: z.number(),
    quality: qualityReportSchema,
  }),
  z.object({ status: z.literal('unchanged'), jobId: z.string(), releaseId: z.string() }),
  z.object({
    status: z.literal('rejected'),
    jobId: z.string(),
    fileName: z.string(),
    problems: z.array(ingestProblemSchema),
    problemCount: z.number(),
    rejectedRows: z.number(),
  }),
]);

const csvTypes = ['text/csv', 'application/octet-stream'];

/**
 * The upload API: the request body is the CSV itself, streamed into the landing zone as it
 * arrives, never held in memory whole.
 */
export function uploadRoutes(platform: Platform): FastifyPluginAsyncZod {
  return async (app) => {
    // Hand the raw request stream to the route instead of buffering and parsing it.
    app.addContentTypeParser(csvTypes, (_request, payload, done) => done(null, payload));

    app.post(
      '/uploads',
      {
        schema: {
          summary: 'Upload one monthly CSV export; it is validated, de-identified and published',
          tags: ['ingestion'],
          querystring: uploadQuery,
          consumes: csvTypes,
          response: {
            201: uploadResult,
            200: uploadResult,
            422: uploadResult,
            400: errorBodySchema,
            401: errorBodySchema,
            403: errorBodySchema,
            404: errorBodySchema,
          },
        },
      },
      async (request, reply) => {
        const caller = requireCaller(request);
        const result = await ingestUpload(platform, {
          actor: actorOf(caller),
          datasetId: request.query.dataset,
          hospitalId: request.query.hospital,
          month: request.query.month,
          fileName: request.query.fileName,
          source: { stream: request.body as Readable },
        });
        const statuses = { published: 201, unchanged: 200, rejected: 422 } as const;
        const status = statuses[result.status];
        return reply.status(status).send(result);
      },
    );
  };
}
