import type { QuerySpec } from '@medlake/shared';
import { releasesRepository } from '../../catalog/releases-repository.ts';
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
  const releases = await repository.locations(spec.dataset, spec.releases);
  if (spec.releases) {
    const found = new Set(releases.map((release) => release.id));
    spec.releases.forEach((id, index) => {
      if (!found.has(id)) {
        throw new AppError(
          'VALIDATION_FAILED',
          `Release ${id} is not a release of ${spec.dataset}`,
          [{ path: `releases[${index}]`, message: 'not a release of this dataset' }],
        );
      }
    });
    const outside = releases.find(
      (release) => access.hospitals && !access.hospitals.includes(release.hospitalId),
    );
    if (outside) {
      throw new AppError(
        'FORBIDDEN',
        `Your access to ${spec.dataset} does not cover the hospital of release ${outside.id}`,
      );
    }
  }
  const readable = releases.filter(
    (release) => !access.hospitals || access.hospitals.includes(release.hospitalId),
  );
  return readable.map((release) => ({
    id: release.id,
    hospitalId: release.hospitalId,
    month: release.month,
    files: release.files,
  }));
}
