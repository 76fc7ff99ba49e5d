import type { CatalogDb } from './catalog.ts';

/**
 * Which releases have their dictionary pairs written beside their files (migration
 * 2026-12-06r), under which contract version: a count reads those and writes the others'.
 */
export function dictionaryPairsRepository(db: CatalogDb) {
  return {
    /** The releases among these whose pairs were written under this contract version. */
    async written(releaseIds: readonly string[], contractVersion: number): Promise<Set<string>> {
      if (releaseIds.length === 0) return new Set();
      const rows = await db
        .selectFrom('dictionary_release_pairs')
        .select('release_id')
        .where('release_id', 'in', [...releaseIds])
        .where('contract_version', '=', contractVersion)
        .execute();
      return new Set(rows.map((row) => row.release_id));
    },

    /** Records that these releases' pairs are written, in the caller's transaction. */
    async record(releaseIds: readonly string[], contractVersion: number): Promise<void> {
      if (releaseIds.length === 0) return;
      await db
        .insertInto('dictionary_release_pairs')
        .values(releaseIds.map((id) => ({ release_id: id, contract_version: contractVersion })))
        .onConflict((conflict) =>
          conflict.column('release_id').doUpdateSet({ contract_version: contractVersion }),
        )
        .execute();
    },
  };
}
