import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { errorBodySchema, healthReportSchema } from '@medlake/shared';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { catalogBackends } from '../test/catalog-backends.ts';
import { userWithToken } from '../test/api-helpers.ts';
import { createTestApp, createTestPlatform, type TestPlatform } from '../test/helper.ts';
import { buildApp, type App } from './app.ts';
import { createLogger } from './logger.ts';
import { createLocalObjectStore } from './storage/local/local-object-store.ts';

describe.each(catalogBackends())('HTTP API with the catalog on %s', (kind) => {
  let platform: TestPlatform;
  let app: App;

  const healthToken = 'h'.repeat(40);

  beforeAll(async () => {
    platform = await createTestPlatform(kind, { MEDLAKE_HEALTH_TOKEN: healthToken });
    app = await createTestApp(platform);
  });

  afterAll(async () => {
    await app.close();
    await platform.dispose();
  });

  it('tells an anonymous caller only whether it works', async () => {
    for (const headers of [{}, { 'x-health-token': 'not the token'.padEnd(40, '!') }]) {
      const response = await app.inject({ method: 'GET', url: '/api/health', headers });
      expect(response.statusCode).toBe(200);
      expect(response.json()).toEqual({ status: 'ok' });
    }
  });

  it('reports every part healthy to an admin and with the health token', async () => {
    const { token } = await userWithToken(platform, 'ops@example.org', {
      role: 'admin',
      name: 'ops',
    });
    const byAdmin = await app.inject({
      method: 'GET',
      url: '/api/health',
      headers: { authorization: `Bearer ${token}` },
    });
    expect(healthReportSchema.parse(byAdmin.json()).components.catalog.kind).toBe(kind);
    const response = await app.inject({
      method: 'GET',
      url: '/api/health',
      headers: { 'x-health-token': healthToken },
    });
    expect(response.statusCode).toBe(200);
    const report = healthReportSchema.parse(response.json());
    expect(report).toMatchObject({
      status: 'ok',
      components: {
        catalog: { status: 'ok', kind },
        engine: { status: 'ok', kind: 'duckdb' },
        storage: { status: 'ok', kind: 'local' },
      },
    });
  });

  it('publishes an OpenAPI document that describes the health route, to signed-in users', async () => {
    for (const url of ['/api/docs', '/api/docs/json', '/api/docs/static/index.html']) {
      const anonymous = await app.inject({ method: 'GET', url });
      expect(anonymous.statusCode, url).toBe(401);
      expect(anonymous.body).not.toContain('/api/v1/admin');
    }
    const { token } = await userWithToken(platform, 'dev@example.org', { name: 'dev' });
    const response = await app.inject({
      method: 'GET',
      url: '/api/docs/json',
      headers: { authorization: `Bearer ${token}` },
    });
    expect(response.statusCode).toBe(200);
    const document = response.json<{ openapi: string; paths: Record<string, unknown> }>();
    expect(document.openapi).toMatch(/^3\./);
    expect(Object.keys(document.paths)).toContain('/api/health');
  });

  it('answers an unknown API route with a typed 404', async () => {
    const response = await app.inject({ method: 'GET', url: '/api/no-such-thing?x=1' });
    expect(response.statusCode).toBe(404);
    expect(errorBodySchema.parse(response.json()).error).toEqual({
      code: 'route_not_found',
      message: 'No route for GET /api/no-such-thing',
    });
  });
});

describe('HTTP errors and the web app', () => {
  let platform: TestPlatform;
  let webRoot: string;

  beforeAll(async () => {
    platform = await createTestPlatform();
    webRoot = await mkdtemp(path.join(tmpdir(), 'medlake-web-'));
    await writeFile(path.join(webRoot, 'index.html'), '<!doctype html><title>medlake test</title>');
  });

  afterAll(async () => {
    await platform.dispose();
    await rm(webRoot, { recursive: true, force: true });
  });

  it('serves the web app at / and for client-side routes, but not for /api', async () => {
    const app = await createTestApp(platform, { webRoot });
    try {
      for (const url of ['/', '/catalog/lab-results']) {
        const response = await app.inject({ method: 'GET', url });
        expect(response.statusCode).toBe(200);
        expect(response.body).toContain('<title>medlake test</title>');
      }
      expect((await app.inject({ method: 'GET', url: '/api/x' })).statusCode).toBe(404);
    } finally {
      await app.close();
    }
  });

  it('serves what the build on disk holds at each request, across a rebuild', async () => {
    const root = await mkdtemp(path.join(tmpdir(), 'medlake-web-rebuilt-'));
    const build = async (name: string) => {
      await rm(path.join(root, 'assets'), { recursive: true, force: true });
      await mkdir(path.join(root, 'assets'), { recursive: true });
      await writeFile(path.join(root, 'assets', `${name}.js`), `console.log('${name}')`);
      await writeFile(
        path.join(root, 'index.html'),
        `<!doctype html><script type="module" src="/assets/${name}.js"></script>`,
      );
    };
    await build('index-old');
    const app = await createTestApp(platform, { webRoot: root });
    try {
      expect((await app.inject({ method: 'GET', url: '/queries' })).body).toContain('index-old');
      // The build is being written: index.html is gone for a moment.
      await rm(path.join(root, 'index.html'));
      const during = await app.inject({ method: 'GET', url: '/queries' });
      expect(during.statusCode).toBe(503);
      expect(during.headers['retry-after']).toBe('10');
      expect(during.body).toMatch(/^The web app is not built, or a build is being written/);

      await build('index-new');
      const page = await app.inject({ method: 'GET', url: '/queries' });
      expect(page.statusCode).toBe(200);
      expect(page.body).toContain('/assets/index-new.js');
      expect(page.headers['cache-control']).toBe('no-cache');
      const asset = await app.inject({ method: 'GET', url: '/assets/index-new.js' });
      expect(asset.statusCode).toBe(200);
      expect(asset.headers['content-type']).toMatch(/javascript/);
      expect(asset.body).toBe("console.log('index-new')");
      // An open page asking for the old build's file gets a 404, never index.html as script.
      const old = await app.inject({ method: 'GET', url: '/assets/index-old.js' });
      expect(old.statusCode).toBe(404);
      expect(old.body).not.toContain('<!doctype html>');
    } finally {
      await app.close();
      await rm(root, { recursive: true, force: true });
    }
  });

  it('turns schema failures into VALIDATION_FAILED with the failing paths', async () => {
    // Routes added before ready(), outside /api, where every route needs an access rule.
    const app = await buildApp({ platform, logger: createLogger('silent') });
    app.post(
      '/probe',
      { schema: { body: z.object({ month: z.string().regex(/^\d{4}-\d{2}$/) }) } },
      async () => ({ ok: true }),
    );
    app.get('/boom', async () => {
      throw new Error('database password is hunter2');
    });
    try {
      const invalid = await app.inject({
        method: 'POST',
        url: '/probe',
        payload: { month: 'May' },
      });
      expect(invalid.statusCode).toBe(400);
      const body = errorBodySchema.parse(invalid.json());
      expect(body.error.code).toBe('invalid_input');
      expect(body.error.details?.[0]?.path).toBe('/month');

      const badJson = await app.inject({
        method: 'POST',
        url: '/probe',
        headers: { 'content-type': 'application/json' },
        payload: '{"month":',
      });
      expect(badJson.statusCode).toBe(400);
      expect(errorBodySchema.parse(badJson.json()).error.code).toBe('invalid_input');

      const crash = await app.inject({ method: 'GET', url: '/boom' });
      expect(crash.statusCode).toBe(500);
      const crashBody = errorBodySchema.parse(crash.json());
      expect(crashBody.error.code).toBe('internal');
      expect(crash.body).not.toContain('hunter2');
      expect(crashBody.error.message).toContain('request id');
    } finally {
      await app.close();
    }
  });

  it('answers 503 and names the failing part when storage is unusable', async () => {
    const file = path.join(webRoot, 'index.html');
    const token = 't'.repeat(32);
    const app = await createTestApp({
      ...platform,
      env: { ...platform.env, MEDLAKE_HEALTH_TOKEN: token },
      store: createLocalObjectStore(file),
    });
    try {
      const anonymous = await app.inject({ method: 'GET', url: '/api/health' });
      expect(anonymous.statusCode).toBe(503);
      expect(anonymous.json()).toEqual({ status: 'degraded' });
      const response = await app.inject({
        method: 'GET',
        url: '/api/health',
        headers: { 'x-health-token': token },
      });
      expect(response.statusCode).toBe(503);
      const report = healthReportSchema.parse(response.json());
      expect(report.status).toBe('degraded');
      expect(report.components.storage.status).toBe('error');
      expect(report.components.catalog.status).toBe('ok');
    } finally {
      await app.close();
    }
  });
});
