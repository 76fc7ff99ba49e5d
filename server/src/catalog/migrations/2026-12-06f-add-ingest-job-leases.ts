import type { Kysely } from 'kysely';

export async function up(db: Kysely<unknown>): Promise<void> {
  // A running ingest beats every few seconds; only one whose beat stopped (its server died) is
  // failed and cleaned, by any server on the same catalog. Ingests running before this column
  // have none, and count as stopped.
  await db.schema.alterTable('jobs').addColumn('heartbeat_at', 'timestamptz').execute();
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await db.schema.alterTable('jobs').dropColumn('heartbeat_at').execute();
}
