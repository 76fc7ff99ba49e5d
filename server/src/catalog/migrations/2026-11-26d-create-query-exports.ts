import { sql, type Kysely } from 'kysely';

export async function up(db: Kysely<unknown>): Promise<void> {
  // An export is one file made from one query's result for its owner; download links point
  // at an export, never at a path.
  await db.schema
    .createTable('query_exports')
    .addColumn('id', 'uuid', (column) => column.primaryKey())
    .addColumn('query_id', 'uuid', (column) => column.notNull().references('query_jobs.id'))
    .addColumn('user_id', 'uuid', (column) => column.notNull().references('users.id'))
    .addColumn('format', 'text', (column) =>
      column.notNull().check(sql`format in ('csv', 'parquet')`),
    )
    .addColumn('object_key', 'text', (column) => column.notNull())
    .addColumn('file_name', 'text', (column) => column.notNull())
    .addColumn('bytes', 'bigint', (column) => column.notNull())
    .addColumn('created_at', 'timestamptz', (column) => column.notNull().defaultTo(sql`now()`))
    .execute();
  await db.schema
    .createIndex('query_exports_query')
    .on('query_exports')
    .columns(['query_id', 'format'])
    .execute();

  // Every download through a link: who, which export, when. The audit log of the accounts
  // issue takes these over.
  await db.schema
    .createTable('export_downloads')
    .addColumn('id', 'uuid', (column) => column.primaryKey())
    .addColumn('export_id', 'uuid', (column) => column.notNull().references('query_exports.id'))
    .addColumn('user_id', 'uuid', (column) => column.notNull().references('users.id'))
    .addColumn('downloaded_at', 'timestamptz', (column) => column.notNull().defaultTo(sql`now()`))
    .execute();
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await db.schema.dropTable('export_downloads').execute();
  await db.schema.dropTable('query_exports').execute();
}
