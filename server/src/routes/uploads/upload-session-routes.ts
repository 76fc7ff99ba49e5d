import type { Readable } from 'node:stream';
import {
  newUploadSessionSchema,
  partTargetSchema,
  uploadResultSchema,
  uploadSessionSchema,
} from '@medlake/shared';
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { actorOf } from '../../caller.ts';
import { requireCaller } from '../../http/authenticate.ts';
import { errorResponses } from '../../http/error-responses.ts';
import type { Platform } from '../../platform.ts';
import {
  abortUploadSession,
  completeUploadSession,
  describeUploadSession,
  partTarget,
  putPart,
  startUploadSession,
} from '../../use-cases/uploads/upload-sessions.ts';

const sessionParams = z.object({ id: z.string() });
const partParams = z.object({ id: z.string(), part: z.coerce.number().int() });

/**
 * Uploads in parts, resumable: start, PUT each part where its target says, ask which parts
 * arrived after a dropped connection, complete. Parts sent through the server are streamed to
 * the store as they arrive.
 */
export function uploadSessionRoutes(platform: Platform): FastifyPluginAsyncZod {
  return async (app) => {
    app.addContentTypeParser('application/octet-stream', (_request, payload, done) =>
      done(null, payload),
    );
    const caller = (request: Parameters<typeof requireCaller>[0]) => {
      const found = requireCaller(request);
      return { user: found.user, actor: actorOf(found) };
    };

    app.post(
      '/v1/upload-sessions',
      {
        schema: {
          summary: 'Start an upload in parts, for a file too large for one request',
          tags: ['ingestion'],
          body: newUploadSessionSchema,
          response: { 201: uploadSessionSchema, ...errorResponses(400, 401, 403, 404) },
        },
      },
      async (request, reply) =>
        reply.status(201).send(await startUploadSession(platform, caller(request), request.body)),
    );

    app.get(
      '/v1/upload-sessions/:id',
      {
        schema: {
          summary: 'An upload in parts, with the parts that have arrived',
          tags: ['ingestion'],
          params: sessionParams,
          response: { 200: uploadSessionSchema, ...errorResponses(401, 403, 404) },
        },
      },
      async (request) => describeUploadSession(platform, caller(request), request.params.id),
    );

    app.get(
      '/v1/upload-sessions/:id/parts/:part/target',
      {
        schema: {
          summary: 'Where to PUT one part: the bucket itself on S3, or this server',
          tags: ['ingestion'],
          params: partParams,
          response: { 200: partTargetSchema, ...errorResponses(400, 401, 403, 404, 409) },
        },
      },
      async (request) =>
        partTarget(platform, caller(request), request.params.id, request.params.part),
    );

    app.put(
      '/v1/upload-sessions/:id/parts/:part',
      {
        // A part may be far larger than a JSON body.
        bodyLimit: 5 * 1024 * 1024 * 1024,
        schema: {
          summary: 'Send one part through this server (where the store takes no direct PUTs)',
          tags: ['ingestion'],
          params: partParams,
          consumes: ['application/octet-stream'],
          response: { 204: z.null(), ...errorResponses(400, 401, 403, 404, 409) },
        },
      },
      async (request, reply) => {
        await putPart(
          platform,
          caller(request),
          request.params.id,
          request.params.part,
          request.body as Readable,
        );
        return reply.status(204).send(null);
      },
    );

    app.post(
      '/v1/upload-sessions/:id/complete',
      {
        schema: {
          summary: 'Join the parts and ingest the file, as a one-request upload is',
          tags: ['ingestion'],
          params: sessionParams,
          response: {
            201: uploadResultSchema,
            200: uploadResultSchema,
            422: uploadResultSchema,
            ...errorResponses(401, 403, 404, 409),
          },
        },
      },
      async (request, reply) => {
        const result = await completeUploadSession(platform, caller(request), request.params.id);
        const statuses = { published: 201, unchanged: 200, rejected: 422 } as const;
        return reply.status(statuses[result.status]).send(result);
      },
    );

    app.delete(
      '/v1/upload-sessions/:id',
      {
        schema: {
          summary: 'Cancel an upload in parts and drop what arrived',
          tags: ['ingestion'],
          params: sessionParams,
          response: { 204: z.null(), ...errorResponses(401, 403, 404, 409) },
        },
      },
      async (request, reply) => {
        await abortUploadSession(platform, caller(request), request.params.id);
        return reply.status(204).send(null);
      },
    );
  };
}
