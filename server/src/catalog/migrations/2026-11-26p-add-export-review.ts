import { sql, type Kysely } from 'kysely';

export async function up(db: Kysely<unknown>): Promise<void> {
  // Every export carries its output-check report; one that fails a check on a dataset with an
  // airlock waits for an admin's review before any link to it is handed out.
  await db.schema
    .alterTable('query_exports')
    .addColumn('report', 'jsonb', (column) => column.notNull().defaultTo(sql`'{}'::jsonb`))
    .addColumn('review', 'text', (column) => column.notNull().defaultTo('not_needed'))
    .addColumn('reviewed_by', 'uuid')
    .addColumn('reviewed_at', 'timestamptz')
    .addColumn('review_reason', 'text')
    .execute();
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await db.schema
    .alterTable('query_exports')
    .dropColumn('report')
    .dropColumn('review')
    .dropColumn('reviewed_by')
    .dropColumn('reviewed_at')
    .dropColumn('review_reason')
    .execute();
}
