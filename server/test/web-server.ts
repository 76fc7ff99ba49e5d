import { fileURLToPath } from 'node:url';
import { buildApp } from '../src/app.ts';
import { createLogger } from '../src/logger.ts';
import { startQueryWorker } from '../src/use-cases/queries/query-worker.ts';
import type { StorageKind } from '../src/storage/object-store.ts';
import { createTestPlatform, type TestPlatform } from './helper.ts';

const webRoot = fileURLToPath(new URL('../../web/dist', import.meta.url));

export type WebServer = { url: string; platform: TestPlatform; close(): Promise<void> };

/**
 * medlake as a browser meets it: the API, the built web app and a query worker, listening on
 * a free loopback port, over a fresh MEDLAKE_HOME.
 */
export async function startWebServer(
  extraEnv: Record<string, string> = {},
  options: { storage?: StorageKind; webRoot?: string } = {},
): Promise<WebServer> {
  const platform = await createTestPlatform('pglite', extraEnv, options);
  const logger = createLogger('silent');
  const worker = startQueryWorker(platform, { logger, pollMs: 100 });
  const app = await buildApp({
    platform,
    logger,
    webRoot: options.webRoot ?? webRoot,
    onQuerySubmitted: () => worker.wake(),
  });
  const address = await app.listen({ port: 0, host: '127.0.0.1' });
  return {
    url: address,
    platform,
    async close() {
      await app.close();
      await worker.stop();
      await platform.dispose();
    },
  };
}
