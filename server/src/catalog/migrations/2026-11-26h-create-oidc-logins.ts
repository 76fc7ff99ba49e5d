import { sql, type Kysely } from 'kysely';

export async function up(db: Kysely<unknown>): Promise<void> {
  // The account's identity at the OpenID provider ("<issuer> <sub>"), set at its first SSO
  // sign-in; later sign-ins find the account by it, whatever the e-mail has become.
  await db.schema
    .alterTable('users')
    .addColumn('oidc_subject', 'text', (column) => column.unique())
    .execute();

  // A sign-in on its way through the OpenID provider: what the callback must find again. The
  // browser holds the state in a cookie, so that a callback started elsewhere is refused.
  await db.schema
    .createTable('oidc_logins')
    .addColumn('state', 'text', (column) => column.primaryKey())
    .addColumn('nonce', 'text', (column) => column.notNull())
    .addColumn('code_verifier', 'text', (column) => column.notNull())
    .addColumn('return_to', 'text', (column) => column.notNull())
    .addColumn('created_at', 'timestamptz', (column) => column.notNull().defaultTo(sql`now()`))
    .execute();
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await db.schema.dropTable('oidc_logins').execute();
  await db.schema.alterTable('users').dropColumn('oidc_subject').execute();
}
