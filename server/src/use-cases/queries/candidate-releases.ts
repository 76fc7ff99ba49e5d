import type { QuerySpec } from '@medlake/shared';
import { releasesRepository } from '../../catalog/releases-repository.ts';
import { releaseFilesRepository } from '../../catalog/release-files-repository.ts';
import { AppError } from '../../errors.ts';
import type { CatalogDb } from '../../catalog/catalog.ts';
import type { Platform } from '../../platform.ts';
import type { DatasetAccess } from '../../policy.ts';
import { releaseFolder } from '../../ingest/lake-keys.ts';
import {
  catalogBounds,
  catalogCodes,
  type CandidateRelease,
  type PlanOptions,
} from '../../query/plan-query.ts';

/**
 * The releases the query may read: the ones it names, or the current ones, within the grant
 * and within the hospitals and months its filters allow (so that a one-hospital query does not
 * have the catalog list every release of a 500 TB lake). Where the filters bound the codes
 * (catalogCodes, with the planner's options), each release comes with those of its files that
 * may hold them, for the planner to read only those.
 */
export async function candidateReleases(
  platform: Platform,
  spec: Pick<QuerySpec, 'dataset' | 'releases' | 'where' | 'cohort'>,
  access: DatasetAccess,
  planOptions: PlanOptions = {},
): Promise<CandidateRelease[]> {
  const codes = catalogCodes(spec, planOptions);
  const read = () =>
    codes
      ? // One snapshot for the releases and their files: the statement for the files may select
        // the same releases again itself (locationIds), and must not see one published between.
        platform.catalog.db
          .transaction()
          .setIsolationLevel('repeatable read')
          .execute((trx) => readCandidates(trx, spec, access, codes))
      : readCandidates(platform.catalog.db, spec, access, undefined);
  const { held } = platform.catalog;
  if (!held) return read();
  // Where this process owns the catalog, the same question is answered from memory until a
  // release is published or changed (held-reads.ts). The key holds all that the answer
  // depends on besides those tables.
  const key = JSON.stringify([
    'releases',
    spec.dataset,
    spec.releases ?? null,
    spec.releases ? null : catalogBounds(spec),
    access.hospitals ?? null,
    codes ?? null,
  ]);
  const found = await held.read(key, releaseTables, async () =>
    Object.freeze((await read()).map(frozenCandidate)),
  );
  return found as CandidateRelease[];
}

/** The tables the candidates are read from. */
const releaseTables = ['datasets', 'releases', 'current_releases', 'release_files'];

/** A held candidate is shared by every query that reads it: none may change one. */
function frozenCandidate(release: CandidateRelease): CandidateRelease {
  const files = release.files?.map((file) => Object.freeze({ ...file }));
  return Object.freeze({ ...release, ...(files ? { files: Object.freeze(files) } : {}) });
}

/** The candidates, with the files that may hold these codes when there are codes. */
async function readCandidates(
  db: CatalogDb,
  spec: Pick<QuerySpec, 'dataset' | 'releases' | 'where' | 'cohort'>,
  access: DatasetAccess,
  codes: readonly string[] | undefined,
): Promise<CandidateRelease[]> {
  const repository = releasesRepository(db);
  // Releases named by id are checked whole against the grant below, so only the current ones
  // are narrowed.
  const bounds = spec.releases ? {} : catalogBounds(spec);
  const granted = spec.releases ? undefined : (access.hospitals ?? undefined);
  const hospitals =
    bounds.hospitals && granted
      ? bounds.hospitals.filter((hospital) => granted.includes(hospital))
      : (bounds.hospitals ?? granted);
  const releases = await repository.locations(spec.dataset, spec.releases, {
    ...bounds,
    hospitals,
  });
  const sameReleases = () =>
    repository.locationIds(spec.dataset, spec.releases, { ...bounds, hospitals });
  if (spec.releases) {
    const found = new Set(releases.map((release) => release.id));
    spec.releases.forEach((id, index) => {
      if (!found.has(id)) {
        throw new AppError('invalid_spec', `Release ${id} is not a release of ${spec.dataset}`, [
          { path: `releases[${index}]`, message: 'not a release of this dataset' },
        ]);
      }
    });
    const outside = releases.find(
      (release) => access.hospitals && !access.hospitals.includes(release.hospitalId),
    );
    if (outside) {
      throw new AppError(
        'hospital_not_granted',
        `Your access to ${spec.dataset} does not cover the hospital of release ${outside.id}`,
      );
    }
  }
  const readable = releases.filter(
    (release) => !access.hospitals || access.hospitals.includes(release.hospitalId),
  );
  // What each release's files hold, where the catalog has it, for the planner to skip files:
  // only for a query on some codes, and only the files that may hold them.
  const files = codes
    ? await releaseFilesRepository(db).holding(
        readable.map((release) => release.id),
        codes,
        readable.length === releases.length ? sameReleases() : undefined,
      )
    : new Map<string, CandidateRelease['files']>();
  return readable.map((release) => ({
    id: release.id,
    hospitalId: release.hospitalId,
    month: release.month,
    folder: releaseFolder({ ...release, releaseId: release.id }),
    fileCount: release.fileCount,
    ...(release.maxRowsPerPatient === null ? {} : { maxRowsPerPatient: release.maxRowsPerPatient }),
    ...(files.has(release.id) ? { files: files.get(release.id) } : {}),
  }));
}
