import type { jobsRepository } from '../catalog/jobs-repository.ts';
import type { Platform } from '../platform.ts';

/** How often a server running an ingest says so in the catalog. */
export const ingestHeartbeatMs = 5_000;

/**
 * How long an ingest may go without a beat before another server takes it for dead, fails it
 * and removes its files. Six beats: a server busy for a moment does not lose its ingests.
 */
export const ingestLeaseMs = 30_000;

/**
 * Beats for a running ingest until stopped. A beat that fails (the catalog away for a moment)
 * is simply missed: the lease allows for several.
 */
export function keepIngestLease(
  jobs: ReturnType<typeof jobsRepository>,
  jobId: string,
): { stop(): void } {
  const timer = setInterval(() => {
    jobs.heartbeat(jobId).catch(() => undefined);
  }, ingestHeartbeatMs);
  // The lease never keeps a process alive on its own.
  timer.unref();
  return { stop: () => clearInterval(timer) };
}

/**
 * Before when a running ingest's last beat must be for it to count as dead, for a cleanup when a
 * process starts (medlake serve sweeps again only on PostgreSQL). An embedded
 * catalog belongs to this process alone (the MEDLAKE_HOME lock), so any ingest it finds running
 * was left by a process that died, whatever its last beat; on PostgreSQL, other servers' live
 * ingests are running too, and only an expired lease tells a dead one.
 */
export function ingestStaleBefore(platform: Pick<Platform, 'catalog'>, now = new Date()): Date {
  return platform.catalog.kind === 'pglite' ? now : new Date(now.getTime() - ingestLeaseMs);
}
