import type { Kysely } from 'kysely';

export async function up(db: Kysely<unknown>): Promise<void> {
  // What each Parquet file of a release holds, recorded at publish: the planner reads only the
  // files whose codes and event dates can match a query (as Iceberg's manifests let it), and
  // never opens a file to find out. Releases published before have no rows here; a query reads
  // all their files.
  await db.schema
    .createTable('release_files')
    .addColumn('release_id', 'uuid', (column) =>
      column.notNull().references('releases.id').onDelete('cascade'),
    )
    // The file's name in the release's folder (part-N.parquet).
    .addColumn('file', 'text', (column) => column.notNull())
    .addColumn('row_count', 'bigint', (column) => column.notNull())
    // The distinct codes in the file, as a JSON array; empty where there were too many to list.
    .addColumn('codes', 'jsonb')
    // The first and last event date (YYYY-MM-DD), where the dataset has an event date.
    .addColumn('first_event', 'text')
    .addColumn('last_event', 'text')
    .addPrimaryKeyConstraint('release_files_pkey', ['release_id', 'file'])
    .execute();
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await db.schema.dropTable('release_files').execute();
}
