import { limitOf, type PageRequest } from '@medlake/shared';
import { datasetsRepository } from '../../catalog/datasets-repository.ts';
import { hospitalsRepository } from '../../catalog/hospitals-repository.ts';
import { jobsRepository } from '../../catalog/jobs-repository.ts';
import { queryJobsRepository } from '../../catalog/query-jobs-repository.ts';
import { releasesRepository } from '../../catalog/releases-repository.ts';
import { usersRepository } from '../../catalog/users-repository.ts';
import type { Platform } from '../../platform.ts';
import { storageZones } from '../../storage/object-store.ts';
import { ingestJobKind } from '../ingest-upload.ts';

/** A page of hospitals with their stewards and what they have delivered. */
export async function listHospitals(platform: Platform, page: PageRequest) {
  return hospitalsRepository(platform.catalog.db).overview(limitOf(page));
}

/**
 * The work under way: queries queued and running, oldest first (a page of them, with who ran
 * each), and the ingests running now.
 */
export async function listRunningWork(platform: Platform, page: PageRequest) {
  const db = platform.catalog.db;
  const { jobs, total } = await queryJobsRepository(db).listActive(limitOf(page));
  const users = await usersRepository(db).emailsOf([...new Set(jobs.map((job) => job.userId))]);
  const ingests = await jobsRepository(db).listRunning(ingestJobKind);
  return {
    total,
    queries: jobs.map((job) => ({ job, user: users.get(job.userId) ?? job.userId })),
    ingests,
  };
}

/**
 * What the platform stores: objects and bytes in each zone, and the current releases of each
 * dataset. The zones are counted by listing the store, which on a large bucket takes a while;
 * the page asks for it on demand.
 */
export async function measureStorage(platform: Platform) {
  const zones = await Promise.all(
    storageZones.map(async (zone) => ({ zone, ...(await platform.store.usage(`${zone}/`)) })),
  );
  const datasets = await datasetsRepository(platform.catalog.db).list();
  const totals = await releasesRepository(platform.catalog.db).currentTotals();
  return {
    storage: platform.store.kind,
    zones,
    datasets: datasets.map((dataset) => {
      const total = totals.find((item) => item.datasetId === dataset.id);
      return {
        id: dataset.id,
        title: dataset.title,
        currentReleases: total?.releases ?? 0,
        rows: total?.rows ?? 0,
        sourceBytes: total?.sourceBytes ?? 0,
      };
    }),
  };
}
