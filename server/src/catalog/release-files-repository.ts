import { sql, type Expression } from 'kysely';
import type { CatalogDb } from './catalog.ts';

/**
 * Up to this many releases, their files are read release by release; beyond, through the
 * index on the codes. Measured on bench:catalog's two million files: 200 releases take 25 ms
 * one by one and 450 ms through the index; 2,400 take 800 ms and 650 ms.
 */
const releasesReadOneByOne = 1000;

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

/** What a planner needs of a file to choose whether to read it. */
export type FileCodes = Pick<ReleaseFileStats, 'file' | 'codes'>;

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

    /**
     * The files of these releases that may hold any of these codes (those listing one of them,
     * and those with too many to list), by release, in file order; each file's codes are only
     * those of these it holds. A release with statistics but no such file maps to none; a
     * release without statistics is left out. Only what a planner needs to choose files is
     * read: a query over ten years of a 500 TB lake gets some 24,000 files from here.
     */
    async holding(
      releaseIds: readonly string[],
      codes: readonly string[],
      /**
       * A statement selecting the same releases' ids (releasesRepository's `locationIds`): for
       * many releases, the catalog finds them itself rather than being sent their ids.
       */
      sameReleases?: Expression<{ id: string }>,
    ): Promise<Map<string, FileCodes[]>> {
      const byRelease = new Map<string, FileCodes[]>();
      if (releaseIds.length === 0) return byRelease;
      // The ids as one array parameter: a list of tens of thousands of parameters would pass
      // PostgreSQL's limit of 65,535 per statement.
      const ids = sql`cast(${[...releaseIds]} as uuid[])`;
      const asked = sql`cast(${[...codes]} as text[])`;
      // Each listed file's codes among those asked, looked up one by one (cheaper than listing
      // the file's codes); for one code, that code, filled in below rather than sent per file.
      const held =
        codes.length === 1
          ? sql<null>`null`
          : sql<string[]>`to_jsonb(array(select a from unnest(${asked}) as a where f.codes ? a))`;
      const columns = sql`f.release_id, f.file, f.codes is null as unlisted, ${held} as held`;
      // PostgreSQL's own choice between the two ways is poor (it repeats the index scan on
      // the codes once per release, seconds at a thousand releases), so it is made here: a
      // few releases are read one by one, all their files; many, through the index on the
      // codes, all the files of the lake holding the codes (each one's row fetched, which is
      // most of the time), kept where their release is asked for, by a hash of the ids.
      const found =
        codes.length === 0
          ? { rows: [] }
          : releaseIds.length <= releasesReadOneByOne
            ? await sql<FileCodesRow>`
              select ${columns}
              from unnest(${ids}) as r(id)
              cross join lateral (
                select * from release_files f where f.release_id = r.id offset 0
              ) as f
              where f.codes is null or f.codes ?| ${asked}`.execute(db)
            : await sql<FileCodesRow>`
              with asked as materialized (${sameReleases ?? sql`select unnest(${ids}) as id`}),
              hits as materialized (
                select ${columns} from release_files f where f.codes ?| ${asked} or f.codes is null
              )
              select * from hits where release_id in (select id from asked)`.execute(db);
      addFiles(byRelease, found.rows, codes.length === 1 ? [...codes] : undefined);
      // Releases none of whose files hold the codes: told apart from those without statistics.
      const rest = releaseIds.filter((id) => !byRelease.has(id));
      if (rest.length > 0) {
        const described = await sql<{ id: string }>`
          select r.id from unnest(cast(${rest} as uuid[])) as r(id)
          where exists (select 1 from release_files f where f.release_id = r.id)`.execute(db);
        for (const row of described.rows) byRelease.set(row.id, []);
      }
      return byRelease;
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
      for (const row of sortedByFile(rows)) {
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

type FileCodesRow = {
  release_id: string;
  file: string;
  unlisted: boolean;
  /** The codes asked that the file lists; null when one code was asked (the file's own). */
  held: string[] | null;
};

/**
 * The rows, by release, each release's files in file order (part-2 before part-10). Where one
 * code was asked, every listed file shares the one array of it.
 */
function addFiles(
  byRelease: Map<string, FileCodes[]>,
  rows: readonly FileCodesRow[],
  oneCode: string[] | undefined,
): void {
  for (const row of rows) {
    const files = byRelease.get(row.release_id);
    const file = { file: row.file, codes: row.unlisted ? null : (oneCode ?? row.held) };
    if (files) files.push(file);
    else byRelease.set(row.release_id, [file]);
  }
  // Most releases have one file holding a code: only the others need sorting.
  for (const [id, files] of byRelease) {
    if (files.length > 1) byRelease.set(id, sortedByFile(files));
  }
}

/** In file order, by the number in the name (part-2 before part-10). */
function sortedByFile<T extends { file: string }>(files: readonly T[]): T[] {
  const number = (file: string) => Number(/(\d+)/.exec(file)?.[1] ?? 0);
  return files
    .map((file) => ({ file, order: number(file.file) }))
    .sort((a, b) => a.order - b.order)
    .map(({ file }) => file);
}
