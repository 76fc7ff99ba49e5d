import { datasetListingSchema, errorBodySchema } from '@medlake/shared';
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { requireUser } from '../../http/authenticate.ts';
import type { Platform } from '../../platform.ts';
import { describeDataset, listDatasetsFor } from '../../use-cases/queries/describe-dataset.ts';

const count = z.union([z.number(), z.string()]).describe('a number, or "<N" when suppressed');

const dictionarySchema = z.object({
  id: z.string(),
  title: z.string(),
  description: z.string(),
  columns: z.array(z.object({ name: z.string(), type: z.string(), treatment: z.string() })),
  hospitals: z.array(z.string()),
  months: z.array(z.string()),
  releases: z.number(),
  threshold: z.number(),
  codes: z.array(
    z.object({
      code: z.string(),
      label: z.string().nullable(),
      unit: z.string().nullable(),
      rows: count,
      patients: count,
    }),
  ),
  rules: z.array(z.object({ rule: z.string(), description: z.string(), affected: z.number() })),
});

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
            200: z.object({ datasets: z.array(datasetListingSchema) }),
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
          response: {
            200: dictionarySchema,
            401: errorBodySchema,
            403: errorBodySchema,
            404: errorBodySchema,
          },
        },
      },
      async (request) => {
        const user = requireUser(request);
        return describeDataset(platform, user, request.params.id);
      },
    );
  };
}
