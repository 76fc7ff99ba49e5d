import { sql, type Kysely } from 'kysely';

export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema
    .alterTable('users')
    // argon2id, in its PHC string form (algorithm, parameters and salt travel with the hash).
    .addColumn('password_hash', 'text')
    .addColumn('password_changed_at', 'timestamptz')
    // Set by an admin's reset: the one-time password only opens the page to choose a new one.
    .addColumn('must_change_password', 'boolean', (column) => column.notNull().defaultTo(false))
    .addColumn('failed_logins', 'integer', (column) => column.notNull().defaultTo(0))
    .addColumn('locked_until', 'timestamptz')
    // The TOTP secret, encrypted with the accounts key (AES-256-GCM), and when it was confirmed.
    .addColumn('totp_secret', 'text')
    .addColumn('totp_enabled_at', 'timestamptz')
    // The last TOTP time step accepted, so that one code cannot be used twice.
    .addColumn('totp_last_step', 'bigint')
    .addColumn('last_login_at', 'timestamptz')
    .execute();

  // What each personal API token may be used for (see tokenScopes in policy.ts). Tokens made
  // before scopes existed keep what they could do: queries.
  await db.schema
    .alterTable('api_tokens')
    .addColumn('scopes', 'jsonb', (column) => column.notNull().defaultTo(sql`'["query"]'::jsonb`))
    .execute();

  // Browser sessions: the cookie holds a random token; only its SHA-256 is kept here.
  await db.schema
    .createTable('sessions')
    .addColumn('id', 'uuid', (column) => column.primaryKey())
    .addColumn('user_id', 'uuid', (column) => column.notNull().references('users.id'))
    .addColumn('token_sha256', 'text', (column) => column.notNull().unique())
    // Sent back by the browser in a header on every write: a cross-site form cannot know it.
    .addColumn('csrf_token', 'text', (column) => column.notNull())
    // How the session was opened: 'password' or 'oidc'.
    .addColumn('method', 'text', (column) => column.notNull())
    .addColumn('source', 'text', (column) => column.notNull())
    .addColumn('user_agent', 'text')
    .addColumn('created_at', 'timestamptz', (column) => column.notNull().defaultTo(sql`now()`))
    .addColumn('last_seen_at', 'timestamptz', (column) => column.notNull())
    .addColumn('expires_at', 'timestamptz', (column) => column.notNull())
    .addColumn('revoked_at', 'timestamptz')
    .execute();
  await db.schema.createIndex('sessions_user').on('sessions').column('user_id').execute();

  // Failed logins by source are counted from the audit log itself.
  await db.schema
    .createIndex('audit_log_source')
    .on('audit_log')
    .columns(['source', 'action', 'at'])
    .execute();
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await db.schema.dropIndex('audit_log_source').execute();
  await db.schema.dropTable('sessions').execute();
  await db.schema.alterTable('api_tokens').dropColumn('scopes').execute();
  for (const column of [
    'password_hash',
    'password_changed_at',
    'must_change_password',
    'failed_logins',
    'locked_until',
    'totp_secret',
    'totp_enabled_at',
    'totp_last_step',
    'last_login_at',
  ]) {
    await db.schema.alterTable('users').dropColumn(column).execute();
  }
}
