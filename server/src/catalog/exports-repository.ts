import type { Selectable } from 'kysely';
import type { CatalogDb } from './catalog.ts';
import type { OutputReport } from '@medlake/shared';
import type { ExportReview, QueryExportsTable } from './schema.ts';
import { reviewColumns, type ReviewDecision } from './review-decision.ts';

export type QueryExport = {
  id: string;
  queryId: string;
  userId: string;
  format: 'csv' | 'parquet';
  objectKey: string;
  fileName: string;
  bytes: number;
  createdAt: Date;
  report: OutputReport;
  review: ExportReview;
  reviewedBy: string | null;
  reviewedAt: Date | null;
  reviewReason: string | null;
};

/** Files made from query results, which download links point at. */
export function exportsRepository(db: CatalogDb) {
  const toExport = (row: Selectable<QueryExportsTable>): QueryExport => ({
    id: row.id,
    queryId: row.query_id,
    userId: row.user_id,
    format: row.format,
    objectKey: row.object_key,
    fileName: row.file_name,
    bytes: Number(row.bytes),
    createdAt: row.created_at,
    report: row.report as OutputReport,
    review: row.review,
    reviewedBy: row.reviewed_by,
    reviewedAt: row.reviewed_at,
    reviewReason: row.review_reason,
  });

  return {
    async add(
      item: Omit<QueryExport, 'createdAt' | 'reviewedBy' | 'reviewedAt' | 'reviewReason'>,
    ): Promise<QueryExport> {
      const row = await db
        .insertInto('query_exports')
        .values({
          id: item.id,
          query_id: item.queryId,
          user_id: item.userId,
          format: item.format,
          object_key: item.objectKey,
          file_name: item.fileName,
          bytes: item.bytes,
          report: JSON.stringify(item.report),
          review: item.review,
        })
        .returningAll()
        .executeTakeFirstOrThrow();
      return toExport(row);
    },

    async get(id: string): Promise<QueryExport | undefined> {
      const row = await db
        .selectFrom('query_exports')
        .selectAll()
        .where('id', '=', id)
        .executeTakeFirst();
      return row && toExport(row);
    },

    /** Exports waiting for an admin's review, oldest first. */
    async pendingReview(): Promise<QueryExport[]> {
      const rows = await db
        .selectFrom('query_exports')
        .selectAll()
        .where('review', '=', 'pending')
        .orderBy('created_at')
        .execute();
      return rows.map(toExport);
    },

    /** Records an admin's decision on a pending export; false when it was not pending. */
    async decide(id: string, decision: ReviewDecision): Promise<boolean> {
      const result = await db
        .updateTable('query_exports')
        .set(reviewColumns(decision))
        .where('id', '=', id)
        .where('review', '=', 'pending')
        .executeTakeFirst();
      return Number(result.numUpdatedRows) === 1;
    },

    /** Gives every export of a result still waiting in the airlock the result's decision. */
    async decidePendingOfQuery(queryId: string, decision: ReviewDecision): Promise<void> {
      await db
        .updateTable('query_exports')
        .set(reviewColumns(decision))
        .where('query_id', '=', queryId)
        .where('review', '=', 'pending')
        .execute();
    },

    async find(queryId: string, format: 'csv' | 'parquet'): Promise<QueryExport | undefined> {
      const row = await db
        .selectFrom('query_exports')
        .selectAll()
        .where('query_id', '=', queryId)
        .where('format', '=', format)
        .executeTakeFirst();
      return row && toExport(row);
    },
  };
}
