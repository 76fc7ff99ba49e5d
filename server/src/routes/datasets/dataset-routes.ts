import { datasetDictionarySchema, datasetListSchema, errorBodySchema } from '@medlake/shared';
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { requireUser } from '../../http/authenticate.ts';
import type { Platform } from '../../platform.ts';
import { describeDataset, listDatasetsFor } from '../../use-cases/queries/describe-dataset.ts';

/** The researchers' catalog: which datasets there are, and what is in the ones they may query. */
export function datasetRoutes(platform: Platform): FastifyPluginAsyncZod {
  return async (app) => {
    app.get(
      '/v1/datasets',
      {
        schema: {
          summary: 'Every dataset, with your access level (null: request access)',
          tags: ['catalog'],
          response: {
            200: datasetListSchema,
            401: errorBodySchema,
          },
        },
      },
      async (request) => {
        const user = requireUser(request);
        return { datasets: await listDatasetsFor(platform, user) };
      },
    );

    app.get(
      '/v1/datasets/:id/dictionary',
      {
        schema: {
          summary:
            'The codes of a dataset with names, units and counts, hospitals and months covered',
          tags: ['catalog'],
          params: z.object({ id: z.string().regex(/^[a-z][a-z0-9-]{1,62}$/) }),
          querystring: z.object({
            /** Only codes whose code or name contains this. */
            search: z.string().max(100).optional(),
            page: z.coerce.number().int().min(1).default(1),
            /** Without it, every matching code. */
            pageSize: z.coerce.number().int().min(1).max(1000).optional(),
          }),
          response: {
            200: datasetDictionarySchema,
            401: errorBodySchema,
            403: errorBodySchema,
            404: errorBodySchema,
          },
        },
      },
      async (request) => {
        const dictionary = await describeDataset(platform, requireUser(request), request.params.id);
        // The codes can run to thousands: the browser asks for one page of those it searches.
        const { search, page, pageSize } = request.query;
        const needle = search?.toLowerCase();
        const matching = needle
          ? dictionary.codes.filter(
              (entry) =>
                entry.code.toLowerCase().includes(needle) ||
                (entry.label ?? '').toLowerCase().includes(needle),
            )
          : dictionary.codes;
        const codes = pageSize ? matching.slice((page - 1) * pageSize, page * pageSize) : matching;
        return { ...dictionary, codes, codesMatching: matching.length };
      },
    );
  };
}
