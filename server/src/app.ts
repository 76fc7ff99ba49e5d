import { existsSync } from 'node:fs';
import path from 'node:path';
import fastifyCookie from '@fastify/cookie';
import fastifyHelmet from '@fastify/helmet';
import fastifyStatic from '@fastify/static';
import fastifySwagger from '@fastify/swagger';
import fastifySwaggerUi from '@fastify/swagger-ui';
import type { FastifyUnderPressureOptions } from '@fastify/under-pressure';
import { errorCatalog, errorCodeTable } from '@medlake/shared';
import Fastify from 'fastify';
import {
  jsonSchemaTransform,
  serializerCompiler,
  validatorCompiler,
  type ZodTypeProvider,
} from 'fastify-type-provider-zod';
import { AppError } from './errors.ts';
import { createProbeRecorder } from './audit/probe-recorder.ts';
import { auditRefusal, noteProbes } from './http/audit-refusals.ts';
import { routeAccess } from './http/authenticate.ts';
import { handleError } from './error-handler.ts';
import { loadLimits } from './http/load-limits.ts';
import { refuseNulCharacters } from './http/refuse-nul-characters.ts';
import { helmetOptions, jsonBodyLimit, strictTransportSecurity } from './http/security-headers.ts';
import type { Logger } from './logger.ts';
import type { Platform } from './platform.ts';
import { meRoutes } from './routes/accounts/me-routes.ts';
import { oidcRoutes } from './routes/accounts/oidc-routes.ts';
import { sessionRoutes } from './routes/accounts/session-routes.ts';
import { accessRequestRoutes } from './routes/admin/access-request-routes.ts';
import { adminRoutes } from './routes/admin/admin-routes.ts';
import { auditRoutes } from './routes/audit/audit-routes.ts';
import { datasetRoutes } from './routes/datasets/dataset-routes.ts';
import { healthRoutes } from './routes/health/health-routes.ts';
import { operationsRoutes } from './routes/admin/operations-routes.ts';
import { savedQueryRoutes } from './routes/queries/saved-query-routes.ts';
import { queryRoutes } from './routes/queries/query-routes.ts';
import { uploadRoutes } from './routes/uploads/upload-routes.ts';
import { uploadSessionRoutes } from './routes/uploads/upload-session-routes.ts';
import { version } from './version.ts';

export type AppOptions = {
  platform: Platform;
  logger: Logger;
  /** The built web app (web/dist); when absent, `/` explains how to build it. */
  webRoot?: string;
  /** Called when a query is queued, to wake the worker instead of waiting for its poll. */
  onQuerySubmitted?: () => void;
  /** Load-shedding settings beside the configured ones (tests make the server overloaded). */
  pressure?: Partial<FastifyUnderPressureOptions>;
};

/** Builds the HTTP server: the API under /api, its OpenAPI document, and the web app. */
export async function buildApp(options: AppOptions) {
  const app = Fastify({
    loggerInstance: options.logger,
    bodyLimit: jsonBodyLimit,
    // Behind a load balancer the client's address and scheme come from its X-Forwarded-*
    // headers, for the audit log and for Secure cookies; never trusted otherwise.
    trustProxy: options.platform.env.MEDLAKE_TRUST_PROXY,
  }).withTypeProvider<ZodTypeProvider>();
  app.setValidatorCompiler(validatorCompiler);
  app.setSerializerCompiler(serializerCompiler);
  app.setErrorHandler(handleError);
  // First: shedding and rate limits cost less than anything that follows, sign-in included.
  await app.register(loadLimits(options.platform.env, options.pressure));
  await app.register(fastifyHelmet, helmetOptions(options.platform.store.parts.directOrigin));
  app.addHook('onSend', strictTransportSecurity);
  await app.register(fastifyCookie);
  app.addHook('onRequest', routeAccess(options.platform));
  app.addHook('onError', auditRefusal(options.platform));
  const probes = createProbeRecorder(
    options.platform.audit,
    options.platform.env.MEDLAKE_PROBE_WINDOW_SECONDS * 1000,
  );
  app.addHook('onError', noteProbes(probes));
  app.addHook('onClose', async () => probes.close());
  app.addHook('preValidation', refuseNulCharacters);
  // Every API route, for the access-matrix test: a route added without a rule fails it.
  const apiRoutes: Array<{ method: string; url: string }> = [];
  app.addHook('onRoute', (route) => {
    if (!route.url.startsWith('/api/') || route.url.startsWith('/api/docs')) return;
    for (const method of [route.method].flat()) {
      if (method !== 'HEAD') apiRoutes.push({ method, url: route.url });
    }
  });

  // Beside the routes, the table of error codes: in the description for people, and as
  // x-error-codes (each code's status, meaning and what to do) for programs.
  const openapi = {
    info: {
      title: 'medlake API',
      version,
      description: `Every error answers with \`{ error: { code, message, details? } }\`; the codes, one per cause, are listed below and in docs/errors.md.\n\n${errorCodeTable()}`,
    },
    servers: [],
    'x-error-codes': errorCatalog,
  };
  await app.register(fastifySwagger, {
    openapi,
    transform: jsonSchemaTransform,
  });
  // Under the app's own content security policy, which its page keeps to.
  await app.register(fastifySwaggerUi, { routePrefix: '/api/docs' });

  await app.register(healthRoutes(options.platform), { prefix: '/api' });
  await app.register(uploadRoutes(options.platform), { prefix: '/api' });
  await app.register(uploadSessionRoutes(options.platform), { prefix: '/api' });
  await app.register(datasetRoutes(options.platform), { prefix: '/api' });
  await app.register(auditRoutes(options.platform), { prefix: '/api' });
  await app.register(sessionRoutes(options.platform), { prefix: '/api' });
  await app.register(meRoutes(options.platform), { prefix: '/api' });
  await app.register(oidcRoutes(options.platform), { prefix: '/api' });
  await app.register(adminRoutes(options.platform), { prefix: '/api' });
  await app.register(accessRequestRoutes(options.platform), { prefix: '/api' });
  await app.register(savedQueryRoutes(options.platform), { prefix: '/api' });
  await app.register(operationsRoutes(options.platform), { prefix: '/api' });
  await app.register(queryRoutes(options.platform, { onSubmitted: options.onQuerySubmitted }), {
    prefix: '/api',
  });

  // The web app as the build on disk holds it at each request: a rebuild under a running server
  // (`npm run build` in the same clone) is served at once, never a file list read at start.
  const webRoot = options.webRoot;
  if (webRoot !== undefined) {
    await app.register(fastifyStatic, {
      root: webRoot,
      wildcard: true,
      // index.html names the current build's assets: always asked for again. Assets carry a
      // content hash in their names and never change.
      setHeaders: (response, file) => {
        response.header(
          'cache-control',
          path.basename(file) === 'index.html' ? 'no-cache' : 'public, max-age=31536000, immutable',
        );
      },
    });
  }

  app.setNotFoundHandler((request, reply) => {
    const url = request.url.split('?')[0] ?? '';
    const isPage = request.method === 'GET' && !url.startsWith('/api');
    // A missing asset is a 404, never index.html: HTML taken for a script leaves the page blank.
    const isAsset =
      url.startsWith('/assets/') || /\.(js|mjs|css|map|png|svg|ico|woff2?|webmanifest)$/.test(url);
    if (isPage && !isAsset && webRoot && existsSync(path.join(webRoot, 'index.html'))) {
      return reply.header('cache-control', 'no-cache').sendFile('index.html');
    }
    if (isPage && !isAsset) {
      return reply
        .status(503)
        .header('retry-after', '10')
        .type('text/plain')
        .send(
          'The web app is not built, or a build is being written. Try again in a few seconds; ' +
            'if this stays, run `npm run build`.',
        );
    }
    throw new AppError('route_not_found', `No route for ${request.method} ${url}`);
  });

  return Object.assign(app, { apiRoutes, probes });
}

export type App = Awaited<ReturnType<typeof buildApp>>;
