import type { QualityReport } from '@medlake/shared';
import { hospitalsRepository } from '../../catalog/hospitals-repository.ts';
import { jobsRepository, type Job } from '../../catalog/jobs-repository.ts';
import { releasesRepository, type Release } from '../../catalog/releases-repository.ts';
import { stewardsRepository } from '../../catalog/stewards-repository.ts';
import type { User } from '../../catalog/users-repository.ts';
import { actorOf, type Caller } from '../../caller.ts';
import { AppError } from '../../errors.ts';
import type { Platform } from '../../platform.ts';
import { assertUploadsFor, uploadHospitals } from '../../policy.ts';
import { ingestJobKind } from '../ingest-upload.ts';
import { datasetsRepository } from '../../catalog/datasets-repository.ts';
import { queryColumns } from '../../query/query-columns.ts';

/** Refuses an upload for a hospital the user is not a steward of (admins upload for any). */
export async function requireUploadRight(
  platform: Platform,
  user: User,
  hospitalId: string,
): Promise<void> {
  const assigned = await stewardsRepository(platform.catalog.db).hospitalsOf(user.id);
  assertUploadsFor(user, assigned, hospitalId);
}

/**
 * The uploads of the hospitals the user stewards (all of them for an admin), newest first, and
 * those hospitals: the ones the user may upload for.
 */
export async function listUploads(
  platform: Platform,
  user: User,
  page: { page: number; pageSize: number },
): Promise<{ jobs: Job[]; total: number; hospitals: string[] }> {
  const assigned = await stewardsRepository(platform.catalog.db).hospitalsOf(user.id);
  const visible = uploadHospitals(user, assigned);
  const found = await jobsRepository(platform.catalog.db).list(ingestJobKind, visible, page);
  const hospitals =
    visible ?? (await hospitalsRepository(platform.catalog.db).list()).map((item) => item.id);
  return { ...found, hospitals: [...hospitals] };
}

/**
 * One upload's report: its outcome, the problems found (with line and column) or, once
 * published, the data-quality report of its release. Only for the hospital's stewards.
 */
export async function readUploadReport(
  platform: Platform,
  user: User,
  jobId: string,
): Promise<{ job: Job; quality: QualityReport | null }> {
  const job = await jobsRepository(platform.catalog.db).get(jobId);
  if (!job || job.kind !== ingestJobKind || !job.hospitalId) {
    throw new AppError('upload_not_found', 'Upload not found');
  }
  await requireUploadRight(platform, user, job.hospitalId);
  const releaseId = (job.result as { releaseId?: string } | null)?.releaseId;
  const release = releaseId ? await releasesRepository(platform.catalog.db).get(releaseId) : null;
  return { job, quality: release?.quality ?? null };
}

/** What a preview shows in place of a pseudonym. */
export const hiddenPseudonym = '(pseudonym)';

/** How many rows a preview shows: enough to see what de-identification did, no more. */
export const previewRows = 20;

/**
 * The first rows of an upload's release as the lake holds them, de-identified: what the
 * steward checks after publishing (ids replaced, shifted dates, no names).
 * Reading them is audited like any other read of the lake.
 */
export async function previewUpload(
  platform: Platform,
  caller: Caller,
  jobId: string,
): Promise<{ releaseId: string; rows: Array<Record<string, unknown>> }> {
  const { job } = await readUploadReport(platform, caller.user, jobId);
  const releaseId = (job.result as { releaseId?: string } | null)?.releaseId;
  const release = releaseId ? await releasesRepository(platform.catalog.db).get(releaseId) : null;
  if (!release) {
    throw new AppError(
      'no_release',
      'This upload published no release; there is nothing to preview',
    );
  }
  const dialect = platform.engine.dialect;
  const files = release.files.map((key) => platform.store.locate(key));
  const found = await platform.engine.rows({
    sql: `SELECT * FROM ${dialect.scanParquet(files)} AS r LIMIT ${dialect.placeholder(1)}`,
    params: [previewRows],
  });
  // The steward knows the patients of these rows: seeing their pseudonyms beside them would
  // hand the steward part of the vault's mapping. Linkage columns show that they are there.
  const dataset = await datasetsRepository(platform.catalog.db).get(release.datasetId);
  const columns = dataset ? queryColumns(dataset.contract) : new Map();
  const rows = found.map((row) =>
    Object.fromEntries(
      Object.entries(row).map(([name, value]) => [
        name,
        columns.get(name)?.linkage && value !== null ? hiddenPseudonym : value,
      ]),
    ),
  );
  await platform.audit.record({
    action: 'release.preview',
    actor: actorOf(caller),
    target: `release:${release.id}`,
    details: { rows: rows.length },
  });
  return { releaseId: release.id, rows };
}

/**
 * The releases of a hospital the user stewards (any for an admin), newest month first, with
 * which one is current for each month: what a re-upload replaced.
 */
export async function listReleasesOf(
  platform: Platform,
  user: User,
  hospitalId: string,
  page: { page: number; pageSize: number },
): Promise<{ releases: Release[]; total: number }> {
  await requireUploadRight(platform, user, hospitalId);
  const all = (await releasesRepository(platform.catalog.db).list({ hospitalId })).sort(
    (a, b) => b.month.localeCompare(a.month) || b.publishedAt.getTime() - a.publishedAt.getTime(),
  );
  const start = (page.page - 1) * page.pageSize;
  return { releases: all.slice(start, start + page.pageSize), total: all.length };
}
