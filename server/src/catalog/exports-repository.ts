import type { Selectable } from 'kysely';
import type { CatalogDb } from './catalog.ts';
import type { QueryExportsTable } from './schema.ts';

export type QueryExport = {
  id: string;
  queryId: string;
  userId: string;
  format: 'csv' | 'parquet';
  objectKey: string;
  fileName: string;
  bytes: number;
  createdAt: Date;
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
  });

  return {
    async add(item: Omit<QueryExport, 'createdAt'>): Promise<QueryExport> {
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
