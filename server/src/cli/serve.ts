import { fileURLToPath } from 'node:url';
import { buildApp } from '../app.ts';
import type { Env } from '../env.ts';
import { createLogger } from '../logger.ts';
import { openPlatform } from '../platform.ts';
import { startQueryWorker } from '../use-cases/queries/query-worker.ts';
import { cleanInterruptedIngests } from '../use-cases/clean-interrupted-ingests.ts';
import { ingestLeaseMs } from '../use-cases/ingest-lease.ts';
import { ensureFirstAdmin } from '../use-cases/accounts/manage-users.ts';
import { loadDemoData } from '../use-cases/load-demo-data.ts';
import { expireUploadSessions } from '../use-cases/uploads/upload-sessions.ts';

const webRoot = fileURLToPath(new URL('../../../web/dist', import.meta.url));

/** Opens the platform, migrates the catalog and serves the API and web app until a signal. */
export async function serve(env: Env, options: { demo: boolean }): Promise<void> {
  const logger = createLogger(env.LOG_LEVEL);
  const platform = await openPlatform(env, { migrate: true });
  const interrupted = await cleanInterruptedIngests(platform);
  if (interrupted > 0)
    logger.warn({ interrupted }, 'marked interrupted ingests as failed and removed their files');
  const expired = await expireUploadSessions(platform);
  if (expired > 0) logger.warn({ expired }, 'dropped uploads in parts left unfinished for a week');
  const demo = options.demo
    ? await loadDemoData(platform, (message) => logger.info(message))
    : undefined;
  if (demo) {
    console.log('Loaded the demo data set: dataset lab-results, 2 hospitals, 3 months.');
    console.log(
      `Demo researcher ${demo.email} (aggregate access); API token, shown once, valid until ${demo.expiresAt.toISOString().slice(0, 10)}:\n  ${demo.token}`,
    );
  }
  const firstAdmin = await ensureFirstAdmin(platform);
  if (firstAdmin) {
    console.log(
      `First admin ${firstAdmin.email}; one-time password, shown once (choose a new one and set up an authenticator app at the first sign-in):\n  ${firstAdmin.oneTimePassword}`,
    );
  }
  const worker = startQueryWorker(platform, { logger });
  // Servers beside this one on PostgreSQL may die mid-ingest: their ingests are failed and
  // cleaned here once their lease expires, not only at the next start. An embedded catalog has
  // no other server: every ingest running in it is this one's, and is never swept.
  const sweep =
    platform.catalog.kind === 'pglite'
      ? undefined
      : setInterval(() => {
          cleanInterruptedIngests(platform)
            .then((count) => {
              if (count > 0)
                logger.warn(
                  { count },
                  'failed ingests whose server stopped, and removed their files',
                );
            })
            .catch((error: unknown) =>
              logger.warn({ err: error }, 'could not look for stopped ingests'),
            );
        }, ingestLeaseMs / 2);
  const app = await buildApp({ platform, logger, webRoot, onQuerySubmitted: () => worker.wake() });

  let closing: Promise<void> | undefined;
  const shutdown = (signal: string) => {
    closing ??= (async () => {
      logger.info({ signal }, 'shutting down');
      clearInterval(sweep);
      await app.close();
      await worker.stop();
      await platform.close();
    })();
    return closing;
  };
  process.once('SIGINT', () => void shutdown('SIGINT'));
  process.once('SIGTERM', () => void shutdown('SIGTERM'));

  try {
    await app.listen({ port: env.PORT, host: env.HOST });
  } catch (error) {
    await shutdown('listen failed');
    throw error;
  }
  const address = app.server.address();
  const port = typeof address === 'object' && address ? address.port : env.PORT;
  const host = env.HOST.includes(':') ? `[${env.HOST}]` : env.HOST;
  console.log(`medlake is running at http://${host}:${port}/ (catalog: ${platform.catalog.kind})`);
}
