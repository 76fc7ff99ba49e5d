import type { CatalogDb } from '../src/catalog/catalog.ts';
import { releasePairsKey } from '../src/use-cases/queries/dictionary-pairs.ts';

/**
 * Every object published releases have in the lake: their Parquet files, and the pairs file of
 * each whose pairs are recorded (releases published without a dictionary count have none yet).
 * What a lake holds once failed ingests are cleaned up.
 */
export async function publishedObjects(
  db: CatalogDb,
  releases: ReadonlyArray<Parameters<typeof releasePairsKey>[0] & { files: string[] }>,
): Promise<string[]> {
  const recorded = new Set(
    (await db.selectFrom('dictionary_release_pairs').select('release_id').execute()).map(
      (row) => row.release_id,
    ),
  );
  return releases
    .flatMap((release) => [
      ...release.files,
      ...(recorded.has(release.id) ? [releasePairsKey(release)] : []),
    ])
    .sort();
}
