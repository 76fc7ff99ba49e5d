import { sql, type Kysely } from 'kysely';

export async function up(db: Kysely<unknown>): Promise<void> {
  // Which releases have their dictionary pairs written beside their files in the lake
  // (use-cases/queries/dictionary-pairs.ts): a publish counts its hospital's figures from those
  // small files instead of every release's rows. A release without a row here (published
  // before, or whose count failed) gets its pairs written the next time its scope is counted.
  // The contract version says which columns were the code, label and unit when they were
  // written; pairs of another version are written again.
  await db.schema
    .createTable('dictionary_release_pairs')
    .addColumn('release_id', 'uuid', (column) =>
      column.primaryKey().references('releases.id').onDelete('cascade'),
    )
    .addColumn('contract_version', 'integer', (column) => column.notNull())
    .addColumn('written_at', 'timestamptz', (column) => column.notNull().defaultTo(sql`now()`))
    .execute();
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await db.schema.dropTable('dictionary_release_pairs').execute();
}
