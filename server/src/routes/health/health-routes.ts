import { timingSafeEqual } from 'node:crypto';
import { errorBodySchema, healthReportSchema, healthStatusSchema } from '@medlake/shared';
import type { FastifyRequest } from 'fastify';
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { optionalIdentity } from '../../http/authenticate.ts';
import type { Platform } from '../../platform.ts';
import { checkHealth } from '../../use-cases/check-health.ts';
import { createHealthMonitor } from '../../use-cases/health-monitor.ts';

/** The header a load balancer or monitor sends MEDLAKE_HEALTH_TOKEN in. */
export const healthTokenHeader = 'x-health-token';

const report = healthReportSchema.or(healthStatusSchema);

export function healthRoutes(platform: Platform): FastifyPluginAsyncZod {
  /**
   * Whether the caller may see which catalog, engine and store run, their errors and the
   * version: an admin, or whoever holds the health token. Anyone else learns ok or not ok.
   */
  const mayReadDetails = async (request: FastifyRequest): Promise<boolean> => {
    const expected = platform.env.MEDLAKE_HEALTH_TOKEN;
    const sent = request.headers[healthTokenHeader];
    if (expected && typeof sent === 'string') {
      const given = Buffer.from(sent);
      const wanted = Buffer.from(expected);
      if (given.length === wanted.length && timingSafeEqual(given, wanted)) return true;
    }
    const { user } = await optionalIdentity(platform, request);
    return user?.role === 'admin' && user.disabledAt === null;
  };

  return async (app) => {
    const monitor = createHealthMonitor(() => checkHealth(platform));
    app.get(
      '/health',
      {
        schema: {
          summary:
            'Whether the server works (ok or degraded); to admins and with the health token also the version and how the catalog, engine and store are, from a probe at most 2 seconds old',
          tags: ['operations'],
          response: { 200: report, 503: report, 500: errorBodySchema },
        },
      },
      async (request, reply) => {
        const full = await monitor.current();
        // Load balancers take a non-2xx answer as "send no traffic here".
        return reply
          .status(full.status === 'ok' ? 200 : 503)
          .send((await mayReadDetails(request)) ? full : { status: full.status });
      },
    );
  };
}
