import { rm } from 'node:fs/promises';
import { jobsRepository, type Job } from '../catalog/jobs-repository.ts';
import { releasesRepository } from '../catalog/releases-repository.ts';
import type { Platform } from '../platform.ts';
import { ingestStaleBefore } from './ingest-lease.ts';
import { ingestFiles, ingestJobKind } from './ingest-upload.ts';

/**
 * Marks ingests whose server died (kill -9, power loss) as failed, and removes what they left:
 * the raw upload, the scratch directory and any Parquet file of the release they never
 * published. Also removes what ended ingests could not (the object store was unreachable as
 * they failed). A server runs it at start and then every few seconds: on one PostgreSQL several
 * servers run ingests side by side, so only an ingest whose lease expired (no heartbeat for
 * ingestLeaseMs) counts as dead; on the embedded catalog, every running one does. A store still
 * unreachable leaves the rest for the next time instead of stopping this one.
 */
export async function cleanInterruptedIngests(platform: Platform): Promise<number> {
  const jobs = jobsRepository(platform.catalog.db);
  const interrupted = await jobs.listExpired(ingestJobKind, ingestStaleBefore(platform));
  let failed = 0;
  for (const job of interrupted) {
    // Marked first: a process killed in between finds the job still running next time.
    await jobs.setLeftovers(job.id, true);
    const ended = await jobs.finish(job.id, {
      status: 'failed',
      error: { message: 'interrupted: the server running this ingest stopped before it finished' },
    });
    if (ended) failed += 1;
  }
  for (const job of await jobs.listWithLeftovers(ingestJobKind)) {
    try {
      await removeFilesOf(platform, job);
      await jobs.setLeftovers(job.id, false);
    } catch {
      // Tried again at the next start.
    }
  }
  return failed;
}

async function removeFilesOf(platform: Platform, job: Job): Promise<void> {
  const params = job.params as Parameters<typeof ingestFiles>[2];
  const files = ingestFiles(platform, job.id, params);
  // A published release's folder is the release; only an unpublished one is a leftover.
  if (!(await releasesRepository(platform.catalog.db).get(params.releaseId))) {
    await platform.store.deleteFolder(files.lakeFolder);
  }
  if (platform.env.MEDLAKE_LANDING_RETENTION === 'delete') {
    await platform.store.delete(files.landingKey);
  }
  await rm(files.workDirectory, { recursive: true, force: true });
}
