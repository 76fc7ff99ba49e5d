import type { Kysely } from 'kysely';

export async function up(db: Kysely<unknown>): Promise<void> {
  // A small aggregate result is stored here, in the same statement that marks its query
  // succeeded, instead of as a Parquet file written before it (issue 22: the file's write was
  // 2–3 ms of the query's fixed cost). Its pages are read from here; an export writes its file
  // from these rows when asked (use-cases/queries/stored-result.ts).
  await db.schema
    .createTable('query_results')
    .addColumn('query_id', 'uuid', (column) =>
      column.primaryKey().references('query_jobs.id').onDelete('cascade'),
    )
    .addColumn('rows', 'jsonb', (column) => column.notNull())
    .execute();
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await db.schema.dropTable('query_results').execute();
}
