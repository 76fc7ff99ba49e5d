import { sql, type Kysely } from 'kysely';

export async function up(db: Kysely<unknown>): Promise<void> {
  // The privacy budget: what each noisy answer cost its holder on a dataset, and the answer it
  // was (the same answer again costs nothing).
  await db.schema
    .createTable('privacy_spending')
    .addColumn('id', 'bigserial', (column) => column.primaryKey())
    .addColumn('holder', 'text', (column) => column.notNull())
    .addColumn('dataset_id', 'text', (column) => column.notNull().references('datasets.id'))
    .addColumn('answer_key', 'text', (column) => column.notNull())
    .addColumn('query_id', 'uuid', (column) => column.notNull())
    // In millionths, so that sums are exact.
    .addColumn('epsilon_micro', 'bigint', (column) => column.notNull())
    .addColumn('spent_at', 'timestamptz', (column) => column.notNull().defaultTo(sql`now()`))
    .execute();
  await db.schema
    .createIndex('privacy_spending_holder')
    .on('privacy_spending')
    .columns(['holder', 'dataset_id', 'spent_at'])
    .execute();
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await db.schema.dropTable('privacy_spending').execute();
}
