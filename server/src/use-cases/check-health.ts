import type { ComponentStatus, HealthReport } from '@medlake/shared';
import type { Platform } from '../platform.ts';
import { version } from '../version.ts';

const componentTimeoutMs = 5_000;

/**
 * Asks the catalog, the engine and the object store whether they work, each with a time
 * limit, so that one hung part shows as an error instead of hanging the health check.
 */
export async function checkHealth(platform: Platform): Promise<HealthReport> {
  const [catalog, engine, storage] = await Promise.all([
    probe(platform.catalog.kind, () => pingCatalog(platform)),
    probe(platform.engine.kind, () => platform.engine.ping()),
    probe(platform.store.kind, () => platform.store.ping()),
  ]);
  const allOk = [catalog, engine, storage].every((component) => component.status === 'ok');
  return { status: allOk ? 'ok' : 'degraded', version, components: { catalog, engine, storage } };
}

async function pingCatalog(platform: Platform): Promise<void> {
  await platform.catalog.db.selectFrom('meta').select('key').limit(1).execute();
}

async function probe(kind: string, check: () => Promise<void>): Promise<ComponentStatus> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error('no answer in time')), componentTimeoutMs);
  });
  try {
    await Promise.race([check(), timeout]);
    return { status: 'ok', kind };
  } catch (error) {
    return { status: 'error', kind, message: error instanceof Error ? error.message : 'failed' };
  } finally {
    clearTimeout(timer);
  }
}
