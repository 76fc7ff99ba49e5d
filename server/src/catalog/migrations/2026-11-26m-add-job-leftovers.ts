import { sql, type Kysely } from 'kysely';

export async function up(db: Kysely<unknown>): Promise<void> {
  // An ingest that could not remove what it wrote (the object store was unreachable as it
  // failed) says so, and the next start removes it: raw uploads must not linger in landing.
  await db.schema
    .alterTable('jobs')
    .addColumn('leftovers', 'boolean', (column) => column.notNull().defaultTo(sql`false`))
    .execute();
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await db.schema.alterTable('jobs').dropColumn('leftovers').execute();
}
