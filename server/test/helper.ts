import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { buildApp, type App } from '../src/app.ts';
import type { Actor } from '../src/audit/audit-log.ts';
import type { CatalogKind } from '../src/catalog/catalog.ts';
import { loadEnv, type Env } from '../src/env.ts';
import { homeLayout } from '../src/home-layout.ts';
import { createLogger } from '../src/logger.ts';
import { openPlatform, type Platform } from '../src/platform.ts';
import type { StorageKind } from '../src/storage/object-store.ts';
import { copyEmptyPglite, createTestDatabase } from './catalog-backends.ts';
import { s3DeploymentEnv } from './s3.ts';

export type TestPlatform = Platform & { dispose(): Promise<void> };

/**
 * A whole platform on a fresh MEDLAKE_HOME, with its catalog on the given backend and
 * migrated. dispose() closes it and deletes everything it made.
 */
export async function createTestPlatform(
  kind: CatalogKind = 'pglite',
  extraEnv: Record<string, string> = {},
  options: { storage?: StorageKind } = {},
): Promise<TestPlatform> {
  // Landing, lake and results in a fresh bucket of the test S3 server, for `storage: 's3'`.
  const bucket = options.storage === 's3' ? await s3DeploymentEnv() : undefined;
  const home = await mkdtemp(path.join(tmpdir(), 'medlake-home-'));
  // PGlite lives inside MEDLAKE_HOME; PostgreSQL gets a fresh database of its own.
  const database = kind === 'postgres' ? await createTestDatabase('postgres') : undefined;
  if (kind === 'pglite') await copyEmptyPglite(homeLayout(home).catalog);
  const databaseUrl =
    database && 'databaseUrl' in database.location ? database.location.databaseUrl : undefined;
  const env: Env = loadEnv({
    MEDLAKE_HOME: home,
    LOG_LEVEL: 'silent',
    // A test machine running many suites lags; shedding is tested on its own (load-limits.test).
    MEDLAKE_SHED_EVENT_LOOP_DELAY_MS: '60000',
    ...(databaseUrl ? { DATABASE_URL: databaseUrl } : {}),
    ...bucket?.env,
    ...extraEnv,
  });
  const platform = await openPlatform(env, { migrate: true });
  return {
    ...platform,
    dispose: async () => {
      await platform.close();
      await database?.dispose();
      await bucket?.drop();
      await rm(home, { recursive: true, force: true });
      await rm(env.MEDLAKE_AUDIT_CHECKPOINT_DIR, { recursive: true, force: true });
    },
  };
}

/** The HTTP app over a test platform, for `app.inject`; close it in afterEach. */
export async function createTestApp(
  platform: Platform,
  options: { webRoot?: string } = {},
): Promise<App> {
  const app = await buildApp({ platform, logger: createLogger('silent'), ...options });
  await app.ready();
  return app;
}

/** Who the audit log names for what a test sets up. */
export const testActor: Actor = { userId: null, name: 'test setup', source: 'test' };
