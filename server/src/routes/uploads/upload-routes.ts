import type { Readable } from 'node:stream';
import {
  errorBodySchema,
  pageRequestSchema,
  releasePageSchema,
  releasePreviewSchema,
  uploadDetailsSchema,
  uploadPageSchema,
  uploadResultSchema,
} from '@medlake/shared';
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { actorOf } from '../../caller.ts';
import { requireCaller } from '../../http/authenticate.ts';
import type { Platform } from '../../platform.ts';
import { ingestUpload } from '../../use-cases/ingest-upload.ts';
import {
  listReleasesOf,
  previewRows,
  previewUpload,
  listUploads,
  readUploadReport,
  requireUploadRight,
} from '../../use-cases/uploads/read-uploads.ts';
import { streamUploadProblems } from '../../use-cases/uploads/upload-problems.ts';
import { presentUploadJob } from './present-upload.ts';
import { errorResponses } from '../../http/error-responses.ts';
import { requireUser } from '../../http/authenticate.ts';

const uploadQuery = z.object({
  dataset: z.string().min(1),
  hospital: z.string().min(1),
  month: z.string().regex(/^\d{4}-(0[1-9]|1[0-2])$/, 'must be YYYY-MM'),
  fileName: z.string().min(1).max(255).default('upload.csv'),
});

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
            201: uploadResultSchema,
            200: uploadResultSchema,
            422: uploadResultSchema,
            400: errorBodySchema,
            401: errorBodySchema,
            403: errorBodySchema,
            404: errorBodySchema,
          },
        },
      },
      async (request, reply) => {
        const caller = requireCaller(request);
        // Checked before a byte of the body is read into the landing zone.
        await requireUploadRight(platform, caller.user, request.query.hospital);
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

    app.get(
      '/v1/uploads',
      {
        schema: {
          summary: 'Uploads of the hospitals you are a data steward of, newest first',
          tags: ['ingestion'],
          querystring: pageRequestSchema,
          response: { 200: uploadPageSchema, ...errorResponses(401, 403) },
        },
      },
      async (request) => {
        const found = await listUploads(platform, requireUser(request), request.query);
        return {
          ...request.query,
          total: found.total,
          hospitals: found.hospitals,
          uploads: found.jobs.map(presentUploadJob),
        };
      },
    );

    app.get(
      '/v1/uploads/:id',
      {
        schema: {
          summary: 'One upload: its validation report, or the data-quality report of its release',
          tags: ['ingestion'],
          params: z.object({ id: z.uuid() }),
          response: {
            200: uploadDetailsSchema,
            401: errorBodySchema,
            403: errorBodySchema,
            404: errorBodySchema,
          },
        },
      },
      async (request) => {
        const report = await readUploadReport(platform, requireUser(request), request.params.id);
        return { ...presentUploadJob(report.job), quality: report.quality };
      },
    );

    app.get(
      '/v1/uploads/:id/preview',
      {
        schema: {
          summary: `The first ${previewRows} rows of an upload's release as the lake holds them, de-identified`,
          tags: ['ingestion'],
          params: z.object({ id: z.uuid() }),
          response: { 200: releasePreviewSchema, ...errorResponses(401, 403, 404, 409) },
        },
      },
      async (request) => previewUpload(platform, requireCaller(request), request.params.id),
    );

    app.get(
      '/v1/uploads/:id/problems',
      {
        schema: {
          summary:
            'Every problem of an upload as CSV (line, column, header, the problem in words, its code), not only the first ones its report shows',
          tags: ['ingestion'],
          params: z.object({ id: z.uuid() }),
          response: {
            200: z.unknown().describe('text/csv'),
            ...errorResponses(401, 403, 404),
          },
        },
      },
      async (request, reply) => {
        const problems = await streamUploadProblems(
          platform,
          requireCaller(request),
          request.params.id,
        );
        // The name comes from the steward's computer: plain ASCII in filename, the name
        // itself encoded in filename* (RFC 6266), so no character can break the header.
        const ascii = problems.fileName.replace(/[^\x20-\x7e]|["\\]/g, '_');
        const encoded = encodeURIComponent(problems.fileName);
        return reply
          .header('content-type', 'text/csv; charset=utf-8')
          .header(
            'content-disposition',
            `attachment; filename="${ascii}"; filename*=UTF-8''${encoded}`,
          )
          .header('cache-control', 'private, no-store')
          .send(problems.body);
      },
    );

    app.get(
      '/v1/releases',
      {
        schema: {
          summary: 'The release history of a hospital you steward, newest month first',
          tags: ['ingestion'],
          querystring: z.object({
            hospital: z.string().min(1),
            page: z.coerce.number().int().min(1).default(1),
            pageSize: z.coerce.number().int().min(1).max(200).default(50),
          }),
          response: {
            200: releasePageSchema,
            401: errorBodySchema,
            403: errorBodySchema,
          },
        },
      },
      async (request) => {
        const { hospital, ...page } = request.query;
        const found = await listReleasesOf(platform, requireUser(request), hospital, page);
        return {
          ...request.query,
          total: found.total,
          releases: found.releases.map((release) => ({
            id: release.id,
            dataset: release.datasetId,
            hospital: release.hospitalId,
            month: release.month,
            rows: release.rowCount,
            rejectedRows: release.rejectedRowCount,
            publishedAt: release.publishedAt.toISOString(),
            current: release.current,
          })),
        };
      },
    );
  };
}
