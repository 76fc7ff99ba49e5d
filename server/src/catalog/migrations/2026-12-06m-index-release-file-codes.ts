import { sql, type Kysely } from 'kysely';

export async function up(db: Kysely<unknown>): Promise<void> {
  // A one-code query over a lake of two million files asks the catalog for the few files per
  // release that list its code: without an index on the codes, PostgreSQL reads every file's
  // row of the releases the query may read, and the planner parses every list (seconds).
  await sql`create index release_files_codes on release_files using gin (codes)`.execute(db);
  // Files with too many codes to list are read for any code: kept apart, they are found
  // without reading the others.
  await db.schema
    .createIndex('release_files_unlisted')
    .on('release_files')
    .column('release_id')
    .where(sql<boolean>`codes is null`)
    .execute();
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await db.schema.dropIndex('release_files_unlisted').execute();
  await db.schema.dropIndex('release_files_codes').execute();
}
