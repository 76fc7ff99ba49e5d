import { rm } from 'node:fs/promises';
import { jobsRepository } from '../catalog/jobs-repository.ts';
import type { Platform } from '../platform.ts';
import { ingestFiles, ingestJobKind } from './ingest-upload.ts';

/**
 * Marks ingests that were running when the last process died (kill -9, power loss) as failed,
 * and removes what they left: the raw upload, the scratch directory and any Parquet file of the
 * release they never published. Runs at start, while this process holds MEDLAKE_HOME, so no
 * running job can belong to a live process.
 */
export async function cleanInterruptedIngests(platform: Platform): Promise<number> {
  const jobs = jobsRepository(platform.catalog.db);
  const interrupted = await jobs.listRunning(ingestJobKind);
  for (const job of interrupted) {
    const params = job.params as Parameters<typeof ingestFiles>[2];
    const files = ingestFiles(platform, job.id, params);
    await platform.store.deleteFolder(files.lakeFolder);
    await platform.store.delete(files.landingKey);
    await rm(files.workDirectory, { recursive: true, force: true });
    await jobs.finish(job.id, {
      status: 'failed',
      error: { message: 'interrupted: the process stopped before the ingest finished' },
    });
  }
  return interrupted.length;
}
