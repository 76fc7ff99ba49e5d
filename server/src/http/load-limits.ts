import { createHash } from 'node:crypto';
import fastifyRateLimit from '@fastify/rate-limit';
import fastifyUnderPressure, { type FastifyUnderPressureOptions } from '@fastify/under-pressure';
import type { FastifyInstance, FastifyPluginAsync, FastifyRequest } from 'fastify';
import { AppError } from '../errors.ts';
import type { Env } from '../env.ts';

/** Requests that no limit applies to: the web app's files, and the health check of balancers. */
function isExempt(request: FastifyRequest): boolean {
  const url = request.url.split('?')[0] ?? '';
  return !url.startsWith('/api/') || url === '/api/health';
}

/** The bearer token's hash, as its bucket's name: the token itself is never kept. */
function tokenKey(request: FastifyRequest): string | undefined {
  const match = /^Bearer\s+(\S+)$/i.exec(request.headers.authorization ?? '');
  return match?.[1] && `token:${createHash('sha256').update(match[1]).digest('hex')}`;
}

const seconds = (n: number) => (n === 1 ? '1 second' : `${n} seconds`);

/**
 * Request rate limits per client address and per API token (`@fastify/rate-limit`, counted in
 * this process), checked before anything else, sign-in and token lookup included, so that
 * guessing costs the guesser; and load shedding (`@fastify/under-pressure`) when the event
 * loop lags. Both answer with a typed error and `Retry-After`.
 */
export function loadLimits(
  env: Env,
  pressure: Partial<FastifyUnderPressureOptions> = {},
): FastifyPluginAsync {
  const plugin: FastifyPluginAsync = async (app) => {
    await register(app, env, pressure);
  };
  // Not encapsulated: the hooks apply to every route of the app.
  return Object.assign(plugin, { [Symbol.for('skip-override')]: true });
}

async function register(
  app: FastifyInstance,
  env: Env,
  pressure: Partial<FastifyUnderPressureOptions>,
): Promise<void> {
  const retryAfter = env.MEDLAKE_SHED_RETRY_AFTER_SECONDS;
  await app.register(fastifyUnderPressure, {
    // Lag, not utilisation: a server busy at full utilisation that still answers in time is
    // working, not overloaded (the first bench run shed most requests at 0.98 utilisation).
    maxEventLoopDelay: env.MEDLAKE_SHED_EVENT_LOOP_DELAY_MS,
    retryAfter,
    pressureHandler: (_request, reply) => {
      reply
        .status(503)
        .header('retry-after', String(retryAfter))
        .send({
          error: {
            code: 'overloaded',
            message: `The server is overloaded; try again in ${seconds(retryAfter)}`,
          },
        });
    },
    ...pressure,
  });

  await app.register(fastifyRateLimit, { global: false });
  const window = 60_000;
  const limits = [
    {
      who: 'from your address',
      key: (request: FastifyRequest) => `address:${request.ip}`,
      limit: app.createRateLimit({
        keyGenerator: (request) => `address:${request.ip}`,
        max: env.MEDLAKE_RATE_LIMIT_PER_ADDRESS,
        timeWindow: window,
      }),
    },
    {
      who: 'with this API token',
      key: tokenKey,
      limit: app.createRateLimit({
        keyGenerator: (request) => tokenKey(request) ?? '',
        max: env.MEDLAKE_RATE_LIMIT_PER_TOKEN,
        timeWindow: window,
      }),
    },
  ];
  app.addHook('onRequest', async (request, reply) => {
    if (isExempt(request)) return;
    for (const { who, key, limit } of limits) {
      if (key(request) === undefined) continue;
      const result = await limit(request);
      if (result.isAllowed || !result.isExceeded) continue;
      reply.header('retry-after', String(result.ttlInSeconds));
      throw new AppError(
        'rate_limited',
        `Too many requests ${who} (at most ${result.max} a minute); try again in ${seconds(result.ttlInSeconds)}`,
      );
    }
  });
}
