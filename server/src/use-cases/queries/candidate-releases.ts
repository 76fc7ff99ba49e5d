import type { QuerySpec } from '@medlake/shared';
import { releasesRepository, type Release } from '../../catalog/releases-repository.ts';
import { AppError } from '../../errors.ts';
import type { Platform } from '../../platform.ts';
import type { DatasetAccess } from '../../policy.ts';
import type { CandidateRelease } from '../../query/plan-query.ts';

/** The releases the query may read: the ones it names, or the current ones, within the grant. */
export async function candidateReleases(
  platform: Platform,
  spec: Pick<QuerySpec, 'dataset' | 'releases'>,
  access: DatasetAccess,
): Promise<CandidateRelease[]> {
  const repository = releasesRepository(platform.catalog.db);
  let releases: Release[];
  if (spec.releases) {
    releases = [];
    for (const [index, id] of spec.releases.entries()) {
      const release = await repository.get(id);
      if (!release || release.datasetId !== spec.dataset) {
        throw new AppError(
          'VALIDATION_FAILED',
          `Release ${id} is not a release of ${spec.dataset}`,
          [{ path: `releases[${index}]`, message: 'not a release of this dataset' }],
        );
      }
      if (access.hospitals && !access.hospitals.includes(release.hospitalId)) {
        throw new AppError(
          'FORBIDDEN',
          `Your access to ${spec.dataset} does not cover the hospital of release ${id}`,
        );
      }
      releases.push(release);
    }
  } else {
    releases = (await repository.list({ datasetId: spec.dataset })).filter(
      (release) =>
        release.current && (!access.hospitals || access.hospitals.includes(release.hospitalId)),
    );
  }
  return releases.map((release) => ({
    id: release.id,
    hospitalId: release.hospitalId,
    month: release.month,
    files: release.files,
  }));
}
