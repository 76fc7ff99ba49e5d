import {
  newSavedQuerySchema,
  pageRequestSchema,
  projectListSchema,
  savedQueryChangeSchema,
  savedQueryPageSchema,
  savedQueryViewSchema,
  type SavedQueryView,
} from '@medlake/shared';
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { requireCaller, requireUser } from '../../http/authenticate.ts';
import { errorResponses } from '../../http/error-responses.ts';
import type { SavedQuery } from '../../catalog/saved-queries-repository.ts';
import type { User } from '../../catalog/users-repository.ts';
import type { Platform } from '../../platform.ts';
import {
  deleteSavedQuery,
  listSavedQueries,
  readSavedQuery,
  saveQuery,
  updateSavedQuery,
} from '../../use-cases/queries/saved-queries.ts';
import { listOwnProjects } from '../../use-cases/access/projects.ts';
import { presentProject } from '../admin/present-access.ts';

const idParams = z.object({ id: z.uuid() });
const errors = errorResponses(400, 401, 403, 404);

/**
 * Saved queries: a spec kept under a name, by its author or shared with one of their projects,
 * whose members can open it in the builder or run it. Running one is an ordinary query.
 */
export function savedQueryRoutes(platform: Platform): FastifyPluginAsyncZod {
  return async (app) => {
    app.post(
      '/v1/saved-queries',
      {
        schema: {
          summary: 'Save a query spec under a name, optionally shared with one of your projects',
          tags: ['queries'],
          body: newSavedQuerySchema,
          response: { 201: savedQueryViewSchema, ...errors },
        },
      },
      async (request, reply) => {
        const caller = requireCaller(request);
        const saved = await saveQuery(platform, caller, request.body);
        return reply.status(201).send(presentSavedQuery(saved, caller.user));
      },
    );

    app.get(
      '/v1/saved-queries',
      {
        schema: {
          summary: 'Your saved queries and those shared with your projects, newest first',
          tags: ['queries'],
          querystring: pageRequestSchema,
          response: { 200: savedQueryPageSchema, ...errors },
        },
      },
      async (request) => {
        const user = requireUser(request);
        const found = await listSavedQueries(platform, user, request.query);
        return {
          ...request.query,
          total: found.total,
          queries: found.queries.map((saved) => presentSavedQuery(saved, user)),
        };
      },
    );

    app.get(
      '/v1/saved-queries/:id',
      {
        schema: {
          summary: 'One saved query',
          tags: ['queries'],
          params: idParams,
          response: { 200: savedQueryViewSchema, ...errors },
        },
      },
      async (request) => {
        const user = requireUser(request);
        return presentSavedQuery(await readSavedQuery(platform, user, request.params.id), user);
      },
    );

    app.patch(
      '/v1/saved-queries/:id',
      {
        schema: {
          summary: 'Rename a saved query of yours, share it differently, or replace its spec',
          tags: ['queries'],
          params: idParams,
          body: savedQueryChangeSchema,
          response: { 200: savedQueryViewSchema, ...errors },
        },
      },
      async (request) => {
        const caller = requireCaller(request);
        const saved = await updateSavedQuery(platform, caller, request.params.id, request.body);
        return presentSavedQuery(saved, caller.user);
      },
    );

    app.delete(
      '/v1/saved-queries/:id',
      {
        schema: {
          summary: 'Delete a saved query of yours',
          tags: ['queries'],
          params: idParams,
          response: { 204: z.null(), ...errors },
        },
      },
      async (request, reply) => {
        await deleteSavedQuery(platform, requireCaller(request), request.params.id);
        return reply.status(204).send(null);
      },
    );

    app.get(
      '/v1/me/projects',
      {
        schema: {
          summary: 'The projects you are a member of (to share queries with)',
          tags: ['queries'],
          response: { 200: projectListSchema, ...errors },
        },
      },
      async (request) => {
        const user = requireUser(request);
        const projects = await listOwnProjects(platform, user.id);
        return { projects: projects.map(presentProject) };
      },
    );
  };
}

function presentSavedQuery(saved: SavedQuery, user: User): SavedQueryView {
  return {
    id: saved.id,
    name: saved.name,
    description: saved.description,
    datasetId: saved.datasetId,
    projectId: saved.projectId,
    author: saved.author,
    mine: saved.userId === user.id,
    spec: saved.spec,
    createdAt: saved.createdAt.toISOString(),
  };
}
