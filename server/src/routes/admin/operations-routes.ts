import {
  exportReviewListSchema,
  exportReviewSchema,
  hospitalOverviewSchema,
  hospitalPageSchema,
  newHospitalSchema,
  pageRequestSchema,
  queryJobSchema,
  resultReviewListSchema,
  runningWorkSchema,
  storageUsageSchema,
} from '@medlake/shared';
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { actorOf } from '../../caller.ts';
import { requireCaller } from '../../http/authenticate.ts';
import { errorResponses } from '../../http/error-responses.ts';
import type { Platform } from '../../platform.ts';
import { presentQueryJob } from '../../query/present-result.ts';
import {
  listHospitals,
  listRunningWork,
  measureStorage,
} from '../../use-cases/admin/platform-operations.ts';
import {
  listExportsForReview,
  listResultsForReview,
  reviewExport,
  reviewResult,
} from '../../use-cases/admin/review-exports.ts';
import { addHospital } from '../../use-cases/manage-datasets.ts';
import { cancelAnyQuery } from '../../use-cases/queries/read-query.ts';
import { presentUploadJob } from '../uploads/present-upload.ts';

const errors = errorResponses(400, 401, 403, 404, 409);

/** Running the platform: hospitals and their stewards, work under way, storage used. */
export function operationsRoutes(platform: Platform): FastifyPluginAsyncZod {
  return async (app) => {
    app.get(
      '/v1/admin/results',
      {
        schema: {
          summary:
            'Results held in the airlock for an admin’s review, oldest first: nothing of them (pages, key points, exports) reaches their owner until one is approved',
          tags: ['admin'],
          response: { 200: resultReviewListSchema, ...errors },
        },
      },
      async () => ({
        results: (await listResultsForReview(platform)).map((job) => ({
          queryId: job.id,
          dataset: job.datasetId,
          userEmail: job.userEmail,
          accessLevel: job.accessLevel,
          spec: job.spec,
          report: job.review!.report,
          finishedAt: job.finishedAt?.toISOString() ?? null,
        })),
      }),
    );

    app.post(
      '/v1/admin/results/:id/review',
      {
        schema: {
          summary:
            'Approve or reject a result held in the airlock, with a reason: the decision opens or closes every path to it (pages, first page and key points, exports in any format)',
          tags: ['admin'],
          params: z.object({ id: z.uuid() }),
          body: exportReviewSchema,
          response: { 204: z.null(), ...errors },
        },
      },
      async (request, reply) => {
        await reviewResult(platform, requireCaller(request), request.params.id, request.body);
        return reply.status(204).send(null);
      },
    );

    app.get(
      '/v1/admin/exports',
      {
        schema: {
          summary: 'Exports waiting in the airlock for an admin’s review, oldest first',
          tags: ['admin'],
          response: { 200: exportReviewListSchema, ...errors },
        },
      },
      async () => ({
        exports: (await listExportsForReview(platform)).map((item) => ({
          id: item.id,
          queryId: item.queryId,
          userEmail: item.userEmail,
          format: item.format,
          fileName: item.fileName,
          bytes: item.bytes,
          report: item.report,
          createdAt: item.createdAt.toISOString(),
        })),
      }),
    );

    app.post(
      '/v1/admin/exports/:id/review',
      {
        schema: {
          summary: 'Approve or reject an export waiting in the airlock, with a reason',
          tags: ['admin'],
          params: z.object({ id: z.uuid() }),
          body: exportReviewSchema,
          response: { 204: z.null(), ...errors },
        },
      },
      async (request, reply) => {
        await reviewExport(platform, requireCaller(request), request.params.id, request.body);
        return reply.status(204).send(null);
      },
    );

    app.get(
      '/v1/admin/hospitals',
      {
        schema: {
          summary: 'Hospitals with their stewards and current releases, a page at a time',
          tags: ['admin'],
          querystring: pageRequestSchema,
          response: { 200: hospitalPageSchema, ...errors },
        },
      },
      async (request) => {
        const found = await listHospitals(platform, request.query);
        return {
          ...request.query,
          total: found.total,
          hospitals: found.hospitals.map((hospital) => ({
            ...hospital,
            createdAt: hospital.createdAt.toISOString(),
          })),
        };
      },
    );

    app.post(
      '/v1/admin/hospitals',
      {
        schema: {
          summary: 'Add a hospital; its id appears in lake paths (lower-case letters, digits, -)',
          tags: ['admin'],
          body: newHospitalSchema,
          response: { 201: hospitalOverviewSchema, ...errors },
        },
      },
      async (request, reply) => {
        const caller = requireCaller(request);
        const hospital = await addHospital(platform, actorOf(caller), request.body);
        return reply.status(201).send({
          ...hospital,
          stewards: [],
          currentReleases: 0,
          latestMonth: null,
          createdAt: hospital.createdAt.toISOString(),
        });
      },
    );

    app.get(
      '/v1/admin/jobs',
      {
        schema: {
          summary: 'Queries queued and running (oldest first, paged) and ingests running',
          tags: ['admin'],
          querystring: pageRequestSchema,
          response: { 200: runningWorkSchema, ...errors },
        },
      },
      async (request) => {
        const work = await listRunningWork(platform, request.query);
        return {
          ...request.query,
          total: work.total,
          queries: work.queries.map(({ job, user }) => ({
            id: job.id,
            dataset: job.datasetId,
            status: job.status as 'queued' | 'running',
            user,
            accessLevel: job.accessLevel,
            createdAt: job.createdAt.toISOString(),
            startedAt: job.startedAt?.toISOString() ?? null,
            percent: presentQueryJob(job).progress?.percent ?? null,
          })),
          ingests: work.ingests.map(presentUploadJob),
        };
      },
    );

    app.delete(
      '/v1/admin/queries/:id',
      {
        schema: {
          summary: "Stop anyone's query (queued or running); the audit log records who did",
          tags: ['admin'],
          params: z.object({ id: z.uuid() }),
          response: { 200: queryJobSchema, ...errors },
        },
      },
      async (request) => {
        const job = await cancelAnyQuery(platform, requireCaller(request), request.params.id);
        // An administrator stops queries without reading them: the key points of one that had
        // already finished are data, reached only through a grant, and stay with their owner.
        return { ...presentQueryJob(job), summary: null };
      },
    );

    app.get(
      '/v1/admin/storage',
      {
        schema: {
          summary: 'Objects and bytes in each storage zone, and the current releases by dataset',
          tags: ['admin'],
          response: { 200: storageUsageSchema, ...errors },
        },
      },
      async () => measureStorage(platform),
    );
  };
}
