import { sql, type Kysely } from 'kysely';

export async function up(db: Kysely<unknown>): Promise<void> {
  // One row per audited event, numbered without gaps. Each row's hash covers its own fields and
  // the previous row's hash, so an edited, inserted or deleted row breaks the chain from there.
  await db.schema
    .createTable('audit_log')
    .addColumn('seq', 'bigint', (column) => column.primaryKey())
    .addColumn('at', 'timestamptz', (column) => column.notNull())
    // The user the event was done by or for; null for a failed login of an unknown name.
    .addColumn('actor_id', 'uuid')
    // What the actor was called at the time (an e-mail or the name tried at a login).
    .addColumn('actor', 'text')
    .addColumn('action', 'text', (column) => column.notNull())
    .addColumn('target', 'text')
    .addColumn('outcome', 'text', (column) =>
      column.notNull().check(sql`outcome in ('success', 'failure', 'denied')`),
    )
    // Where from: the client's address for the API, "cli:<os user>@<host>" for the CLI.
    .addColumn('source', 'text', (column) => column.notNull())
    .addColumn('details', 'jsonb', (column) => column.notNull())
    .addColumn('prev_hash', 'text', (column) => column.notNull())
    .addColumn('hash', 'text', (column) => column.notNull())
    .execute();
  await db.schema.createIndex('audit_log_at').on('audit_log').column('at').execute();
  await db.schema
    .createIndex('audit_log_actor')
    .on('audit_log')
    .columns(['actor_id', 'seq'])
    .execute();
  await db.schema
    .createIndex('audit_log_action')
    .on('audit_log')
    .columns(['action', 'seq'])
    .execute();

  // The application only ever appends. Editing or deleting needs someone to drop this trigger
  // first, and even then `medlake audit verify` finds the change.
  await sql`
    create function audit_log_append_only() returns trigger language plpgsql as $$
    begin
      raise exception 'the audit log is append-only';
    end
    $$`.execute(db);
  await sql`
    create trigger audit_log_append_only before update or delete or truncate on audit_log
    for each statement execute function audit_log_append_only()`.execute(db);

  // Downloads are audited from now on; the table that recorded them before goes. (Catalogs
  // made while it was being written may not have it.)
  await db.schema.dropTable('export_downloads').ifExists().execute();
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await db.schema
    .createTable('export_downloads')
    .addColumn('id', 'uuid', (column) => column.primaryKey())
    .addColumn('export_id', 'uuid', (column) => column.notNull().references('query_exports.id'))
    .addColumn('user_id', 'uuid', (column) => column.notNull().references('users.id'))
    .addColumn('downloaded_at', 'timestamptz', (column) => column.notNull().defaultTo(sql`now()`))
    .execute();
  await db.schema.dropTable('audit_log').execute();
  await sql`drop function audit_log_append_only()`.execute(db);
}
