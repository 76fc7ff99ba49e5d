import { errorBodySchema, healthReportSchema } from '@medlake/shared';
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import type { Platform } from '../../platform.ts';
import { checkHealth } from '../../use-cases/check-health.ts';
import { createHealthMonitor } from '../../use-cases/health-monitor.ts';

export function healthRoutes(platform: Platform): FastifyPluginAsyncZod {
  return async (app) => {
    const monitor = createHealthMonitor(() => checkHealth(platform));
    app.get(
      '/health',
      {
        schema: {
          summary:
            'Whether the catalog, the query engine and the object store work, from a probe at most 2 seconds old (15 while a new one runs)',
          tags: ['operations'],
          response: { 200: healthReportSchema, 503: healthReportSchema, 500: errorBodySchema },
        },
      },
      async (_request, reply) => {
        const report = await monitor.current();
        // Load balancers take a non-2xx answer as "send no traffic here".
        return reply.status(report.status === 'ok' ? 200 : 503).send(report);
      },
    );
  };
}
