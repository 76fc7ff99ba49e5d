import type { Kysely } from 'kysely';

export async function up(db: Kysely<unknown>): Promise<void> {
  // The most rows one patient has in a release, counted at ingest: it bounds how many values of
  // a percentile one patient can decide, so disclosure control need not count it per query.
  // Empty for releases published before; queries over those count it themselves.
  await db.schema.alterTable('releases').addColumn('max_rows_per_patient', 'integer').execute();
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await db.schema.alterTable('releases').dropColumn('max_rows_per_patient').execute();
}
