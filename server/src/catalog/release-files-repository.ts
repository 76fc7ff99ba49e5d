import type { CatalogDb } from './catalog.ts';

/** What one file of a release holds, recorded in the catalog so that planners can skip it. */
export type ReleaseFileStats = {
  /** The file's name in the release's folder. */
  file: string;
  rows: number;
  /** Its distinct codes, sorted; null where there are more than the catalog lists. */
  codes: string[] | null;
  /** Its first and last event date (YYYY-MM-DD); null without an event date or a value. */
  firstEvent: string | null;
  lastEvent: string | null;
};

/**
 * What each file of a release holds (migration 2026-12-06d): written with the release, read by
 * the query planner to leave out files that cannot hold a query's rows.
 */
export function releaseFilesRepository(db: CatalogDb) {
  return {
    async record(releaseId: string, files: readonly ReleaseFileStats[]): Promise<void> {
      if (files.length === 0) return;
      await db
        .insertInto('release_files')
        .values(
          files.map((file) => ({
            release_id: releaseId,
            file: file.file,
            row_count: file.rows,
            codes: file.codes === null ? null : JSON.stringify(file.codes),
            first_event: file.firstEvent,
            last_event: file.lastEvent,
          })),
        )
        .execute();
    },

    /** The files of these releases, by release, in file order; releases without any are left out. */
    async of(releaseIds: readonly string[]): Promise<Map<string, ReleaseFileStats[]>> {
      const byRelease = new Map<string, ReleaseFileStats[]>();
      if (releaseIds.length === 0) return byRelease;
      const rows = await db
        .selectFrom('release_files')
        .selectAll()
        .where('release_id', 'in', [...releaseIds])
        .execute();
      const number = (file: string) => Number(/(\d+)/.exec(file)?.[1] ?? 0);
      for (const row of rows.sort((a, b) => number(a.file) - number(b.file))) {
        const files = byRelease.get(row.release_id) ?? [];
        files.push({
          file: row.file,
          rows: Number(row.row_count),
          codes: row.codes,
          firstEvent: row.first_event,
          lastEvent: row.last_event,
        });
        byRelease.set(row.release_id, files);
      }
      return byRelease;
    },
  };
}
