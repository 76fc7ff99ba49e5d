import { sql, type Kysely } from 'kysely';

export async function up(db: Kysely<unknown>): Promise<void> {
  // Every aggregate query of a ledger dataset reads the holder's newest boxed cells, and every
  // submit counts the user's waiting queries: both grow with history unless an index keeps
  // them to the rows they want.
  await db.schema
    .createIndex('released_cells_recent_boxed')
    .on('released_cells')
    .columns(['holder', 'dataset_id', 'id'])
    .where(sql<boolean>`cell ? 'box'`)
    .execute();
  await db.schema
    .createIndex('query_jobs_waiting')
    .on('query_jobs')
    .column('user_id')
    .where(sql<boolean>`status in ('queued', 'running')`)
    .execute();
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await db.schema.dropIndex('query_jobs_waiting').execute();
  await db.schema.dropIndex('released_cells_recent_boxed').execute();
}
