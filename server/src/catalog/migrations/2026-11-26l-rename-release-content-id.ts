import type { Kysely } from 'kysely';

export async function up(db: Kysely<unknown>): Promise<void> {
  // A release's source is known by its SHA-256 when it passed through the server, and by the
  // store's own tag (an S3 ETag) when it went straight into the bucket in parts.
  await db.schema.alterTable('releases').renameColumn('content_sha256', 'content_id').execute();
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await db.schema.alterTable('releases').renameColumn('content_id', 'content_sha256').execute();
}
