import type { CatalogDb } from './catalog.ts';
import type { UploadSessionStatus } from './schema.ts';

export type UploadSession = {
  id: string;
  userId: string;
  datasetId: string;
  hospitalId: string;
  month: string;
  fileName: string;
  bytes: number;
  partBytes: number;
  objectKey: string;
  storeUploadId: string;
  status: UploadSessionStatus;
  jobId: string | null;
  createdAt: Date;
};

/** Uploads sent in parts, from their start to their ingest. */
export function uploadSessionsRepository(db: CatalogDb) {
  return {
    async create(session: Omit<UploadSession, 'status' | 'jobId' | 'createdAt'>): Promise<void> {
      await db
        .insertInto('upload_sessions')
        .values({
          id: session.id,
          user_id: session.userId,
          dataset_id: session.datasetId,
          hospital_id: session.hospitalId,
          month: session.month,
          file_name: session.fileName,
          bytes: session.bytes,
          part_bytes: session.partBytes,
          object_key: session.objectKey,
          store_upload_id: session.storeUploadId,
          status: 'open',
        })
        .execute();
    },

    async get(id: string): Promise<UploadSession | undefined> {
      const row = await db
        .selectFrom('upload_sessions')
        .selectAll()
        .where('id', '=', id)
        .executeTakeFirst();
      return (
        row && {
          id: row.id,
          userId: row.user_id,
          datasetId: row.dataset_id,
          hospitalId: row.hospital_id,
          month: row.month,
          fileName: row.file_name,
          bytes: Number(row.bytes),
          partBytes: Number(row.part_bytes),
          objectKey: row.object_key,
          storeUploadId: row.store_upload_id,
          status: row.status,
          jobId: row.job_id,
          createdAt: row.created_at,
        }
      );
    },

    /** Moves an open session on; false when it was no longer open (completed twice at once). */
    async close(id: string, status: 'completed' | 'aborted') {
      const result = await db
        .updateTable('upload_sessions')
        .set({ status })
        .where('id', '=', id)
        .where('status', '=', 'open')
        .executeTakeFirst();
      return Number(result.numUpdatedRows) === 1;
    },

    /** Sessions still open that were started before the time given. */
    async openBefore(
      time: Date,
    ): Promise<Array<{ id: string; datasetId: string; objectKey: string; storeUploadId: string }>> {
      const rows = await db
        .selectFrom('upload_sessions')
        .select(['id', 'dataset_id', 'object_key', 'store_upload_id'])
        .where('status', '=', 'open')
        .where('created_at', '<', time)
        .execute();
      return rows.map((row) => ({
        id: row.id,
        datasetId: row.dataset_id,
        objectKey: row.object_key,
        storeUploadId: row.store_upload_id,
      }));
    },

    /** The ingest a completed session became. */
    async setJob(id: string, jobId: string) {
      await db.updateTable('upload_sessions').set({ job_id: jobId }).where('id', '=', id).execute();
    },
  };
}
