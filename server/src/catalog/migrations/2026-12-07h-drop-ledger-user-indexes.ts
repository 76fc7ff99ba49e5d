import { sql, type Kysely } from 'kysely';

export async function up(db: Kysely<unknown>): Promise<void> {
  // The release ledger reads a user's cells through their holders (ledger_holders lists every
  // holder a user's cell was released to): the two indexes by user that 2026-12-07a made are
  // read by nothing, and cost every record a write each.
  await db.schema.dropIndex('released_cells_user_recent_boxed').ifExists().execute();
  await db.schema.dropIndex('released_cells_user_family').ifExists().execute();
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await db.schema
    .createIndex('released_cells_user_family')
    .on('released_cells')
    .columns(['user_id', 'dataset_id', 'family'])
    .execute();
  await db.schema
    .createIndex('released_cells_user_recent_boxed')
    .on('released_cells')
    .columns(['user_id', 'dataset_id', 'id'])
    .where(sql<boolean>`cell ? 'box'`)
    .execute();
}
