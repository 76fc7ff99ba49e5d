import { sql, type Kysely } from 'kysely';

export async function up(db: Kysely<unknown>): Promise<void> {
  // The release ledger: every aggregate cell shown to a project (or a user with a grant of
  // their own) on a dataset whose contract asks for it, so that a later cell can be checked
  // against the earlier ones before it is released.
  await db.schema
    .createTable('released_cells')
    .addColumn('id', 'bigserial', (column) => column.primaryKey())
    .addColumn('holder', 'text', (column) => column.notNull())
    .addColumn('dataset_id', 'text', (column) => column.notNull().references('datasets.id'))
    // SHA-256 of the cell's definition: its groups and their values, filters left out.
    .addColumn('family', 'text', (column) => column.notNull())
    .addColumn('query_id', 'uuid', (column) => column.notNull())
    .addColumn('cell', 'jsonb', (column) => column.notNull())
    .addColumn('patients', 'bigint', (column) => column.notNull())
    .addColumn('released_at', 'timestamptz', (column) => column.notNull().defaultTo(sql`now()`))
    .execute();
  await db.schema
    .createIndex('released_cells_family')
    .on('released_cells')
    .columns(['holder', 'dataset_id', 'family'])
    .execute();
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await db.schema.dropTable('released_cells').execute();
}
