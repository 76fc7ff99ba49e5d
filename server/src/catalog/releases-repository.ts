import type { QualityReport } from '@medlake/shared';
import { sql, type Expression } from 'kysely';
import type { ReleaseFileStats } from './release-files-repository.ts';
import type { CatalogDb } from './catalog.ts';
import { releaseFilesRepository } from './release-files-repository.ts';

export type Release = {
  id: string;
  datasetId: string;
  hospitalId: string;
  month: string;
  jobId: string;
  contractVersion: number;
  /** SHA-256 (hex) of the source file, or the store's tag (s3-etag:…) of one uploaded in parts. */
  contentId: string;
  sourceBytes: number;
  rowCount: number;
  rejectedRowCount: number;
  files: string[];
  quality: QualityReport;
  /** The most rows one patient has in the release; null for releases from before it was kept. */
  maxRowsPerPatient: number | null;
  publishedAt: Date;
  /** Whether new queries read this release for its hospital and month. */
  current: boolean;
};

export type NewRelease = Omit<Release, 'publishedAt' | 'current' | 'maxRowsPerPatient'> & {
  maxRowsPerPatient?: number;
  /** What each file holds, for the planner to skip files; none for a release written without. */
  fileStats?: readonly ReleaseFileStats[];
};

/** The hospitals and months a query may read, as its filters bound them (catalogBounds). */
export type LocationBounds = { hospitals?: readonly string[]; from?: string; to?: string };

/** Published releases, and which one is current for each dataset, hospital and month. */
export function releasesRepository(db: CatalogDb) {
  const selectReleases = () =>
    db
      .selectFrom('releases as r')
      .leftJoin('current_releases as c', 'c.release_id', 'r.id')
      .selectAll('r')
      .select((eb) => eb('c.release_id', 'is not', null).as('current'));

  type Row = Awaited<ReturnType<ReturnType<typeof selectReleases>['executeTakeFirstOrThrow']>>;
  const toRelease = (row: Row): Release => ({
    id: row.id,
    datasetId: row.dataset_id,
    hospitalId: row.hospital_id,
    month: row.month,
    jobId: row.job_id,
    contractVersion: row.contract_version,
    contentId: row.content_id,
    sourceBytes: Number(row.source_bytes),
    rowCount: Number(row.row_count),
    rejectedRowCount: Number(row.rejected_row_count),
    files: row.files,
    quality: row.quality as QualityReport,
    maxRowsPerPatient: row.max_rows_per_patient,
    publishedAt: row.published_at,
    current: Boolean(row.current),
  });

  /** The releases of `locations`, with their ids selected. */
  const selectLocations = (
    datasetId: string,
    ids: readonly string[] | undefined,
    bounds: LocationBounds,
  ) => {
    let query = db.selectFrom('releases as r').select('r.id').where('r.dataset_id', '=', datasetId);
    query = ids
      ? query.where('r.id', 'in', ids.length > 0 ? [...ids] : [''])
      : query.innerJoin('current_releases as c', 'c.release_id', 'r.id');
    if (bounds.hospitals) {
      query =
        bounds.hospitals.length > 0
          ? query.where('r.hospital_id', 'in', [...bounds.hospitals])
          : query.where(sql<boolean>`false`);
    }
    if (bounds.from) query = query.where('r.month', '>=', bounds.from);
    if (bounds.to) query = query.where('r.month', '<=', bounds.to);
    return query;
  };

  /** The current release of a hospital's month: that month, or the latest one before it. */
  const currentOf = async (
    datasetId: string,
    hospitalId: string,
    comparison: '=' | '<',
    month: string,
  ): Promise<Release | undefined> => {
    const row = await selectReleases()
      .where('c.dataset_id', '=', datasetId)
      .where('c.hospital_id', '=', hospitalId)
      .where('c.month', comparison, month)
      .orderBy('c.month', 'desc')
      .limit(1)
      .executeTakeFirst();
    return row && toRelease(row);
  };

  return {
    /**
     * Publishes a release and makes it current for its hospital and month, in one transaction
     * with `alsoInTransaction` (the job's completion), so that either all of it is visible or
     * none of it is.
     */
    async publish(
      release: NewRelease,
      alsoInTransaction: (trx: CatalogDb) => Promise<void>,
    ): Promise<void> {
      await db.transaction().execute(async (trx) => {
        await trx
          .insertInto('releases')
          .values({
            id: release.id,
            dataset_id: release.datasetId,
            hospital_id: release.hospitalId,
            month: release.month,
            job_id: release.jobId,
            contract_version: release.contractVersion,
            content_id: release.contentId,
            source_bytes: release.sourceBytes,
            row_count: release.rowCount,
            rejected_row_count: release.rejectedRowCount,
            files: JSON.stringify(release.files),
            quality: JSON.stringify(release.quality),
            max_rows_per_patient: release.maxRowsPerPatient ?? null,
          })
          .execute();
        await releaseFilesRepository(trx).record(release.id, release.fileStats ?? []);
        await trx
          .insertInto('current_releases')
          .values({
            dataset_id: release.datasetId,
            hospital_id: release.hospitalId,
            month: release.month,
            release_id: release.id,
          })
          .onConflict((conflict) =>
            conflict
              .columns(['dataset_id', 'hospital_id', 'month'])
              .doUpdateSet({ release_id: release.id }),
          )
          .execute();
        await alsoInTransaction(trx);
      });
    },

    async get(id: string): Promise<Release | undefined> {
      const row = await selectReleases().where('r.id', '=', id).executeTakeFirst();
      return row && toRelease(row);
    },

    async current(datasetId: string, hospitalId: string, month: string) {
      return currentOf(datasetId, hospitalId, '=', month);
    },

    /** The current release of the latest month before `month`, to compare quality with. */
    async previousMonth(datasetId: string, hospitalId: string, month: string) {
      return currentOf(datasetId, hospitalId, '<', month);
    },

    /**
     * The releases a query may read: those named, or the current ones; within the hospitals and
     * months given, when given. With how many files each has (part-0.parquet onwards in its
     * folder): a query reads those by name, so that a file lost from the lake fails it instead
     * of going unread (releaseFileLocations). Only the count: a query over ten years of a 500 TB
     * lake would otherwise take two million file keys from the catalog.
     */
    async locations(
      datasetId: string,
      ids?: readonly string[],
      bounds: LocationBounds = {},
    ): Promise<
      Array<
        Pick<Release, 'id' | 'datasetId' | 'hospitalId' | 'month' | 'maxRowsPerPatient'> & {
          fileCount: number;
        }
      >
    > {
      if (bounds.hospitals?.length === 0) return [];
      const rows = await selectLocations(datasetId, ids, bounds)
        .select(['r.dataset_id', 'r.hospital_id', 'r.month', 'r.max_rows_per_patient'])
        .select(sql<number>`jsonb_array_length(r.files)`.as('file_count'))
        .orderBy('r.hospital_id')
        .orderBy('r.month')
        .execute();
      return rows.map((row) => ({
        id: row.id,
        datasetId: row.dataset_id,
        hospitalId: row.hospital_id,
        month: row.month,
        maxRowsPerPatient: row.max_rows_per_patient,
        fileCount: Number(row.file_count),
      }));
    },

    /**
     * The ids of the releases `locations` gives, as a statement to put in another one: so that
     * a statement about tens of thousands of releases finds them in the catalog rather than
     * being sent them (PostgreSQL spends tens of milliseconds planning a statement with an
     * array of 24,000 ids).
     */
    locationIds(
      datasetId: string,
      ids?: readonly string[],
      bounds: LocationBounds = {},
    ): Expression<{ id: string }> {
      return selectLocations(datasetId, ids, bounds);
    },

    /** Per dataset: its current releases, their rows and the bytes of the files they came from. */
    async currentTotals(): Promise<
      { datasetId: string; releases: number; rows: number; sourceBytes: number }[]
    > {
      const rows = await db
        .selectFrom('current_releases as c')
        .innerJoin('releases as r', 'r.id', 'c.release_id')
        .select((eb) => [
          'c.dataset_id',
          eb.fn.countAll<string>().as('releases'),
          eb.fn.sum<string>('r.row_count').as('rows'),
          eb.fn.sum<string>('r.source_bytes').as('source_bytes'),
        ])
        .groupBy('c.dataset_id')
        .execute();
      return rows.map((row) => ({
        datasetId: row.dataset_id,
        releases: Number(row.releases),
        rows: Number(row.rows),
        sourceBytes: Number(row.source_bytes),
      }));
    },

    async list(filter: { datasetId?: string; hospitalId?: string } = {}): Promise<Release[]> {
      let query = selectReleases();
      if (filter.datasetId) query = query.where('r.dataset_id', '=', filter.datasetId);
      if (filter.hospitalId) query = query.where('r.hospital_id', '=', filter.hospitalId);
      const rows = await query
        .orderBy('r.dataset_id')
        .orderBy('r.hospital_id')
        .orderBy('r.month')
        .orderBy('r.published_at')
        .execute();
      return rows.map(toRelease);
    },
  };
}
