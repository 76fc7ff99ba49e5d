import { sql, type Kysely } from 'kysely';

export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema
    .createTable('users')
    .addColumn('id', 'uuid', (column) => column.primaryKey())
    .addColumn('email', 'text', (column) => column.notNull().unique())
    .addColumn('name', 'text', (column) => column.notNull())
    .addColumn('role', 'text', (column) =>
      column
        .notNull()
        .check(sql`role in ('admin', 'steward', 'researcher', 'auditor', 'custodian')`),
    )
    .addColumn('created_at', 'timestamptz', (column) => column.notNull().defaultTo(sql`now()`))
    .addColumn('disabled_at', 'timestamptz')
    .execute();

  // Personal API tokens: only a SHA-256 of the token is kept; the token is shown once.
  await db.schema
    .createTable('api_tokens')
    .addColumn('id', 'uuid', (column) => column.primaryKey())
    .addColumn('user_id', 'uuid', (column) => column.notNull().references('users.id'))
    .addColumn('token_sha256', 'text', (column) => column.notNull().unique())
    .addColumn('name', 'text', (column) => column.notNull())
    .addColumn('expires_at', 'timestamptz', (column) => column.notNull())
    .addColumn('created_at', 'timestamptz', (column) => column.notNull().defaultTo(sql`now()`))
    .addColumn('last_used_at', 'timestamptz')
    .addColumn('revoked_at', 'timestamptz')
    .execute();

  await db.schema
    .createTable('dataset_grants')
    .addColumn('id', 'uuid', (column) => column.primaryKey())
    .addColumn('dataset_id', 'text', (column) => column.notNull().references('datasets.id'))
    .addColumn('user_id', 'uuid', (column) => column.notNull().references('users.id'))
    .addColumn('level', 'text', (column) =>
      column.notNull().check(sql`level in ('aggregate', 'row')`),
    )
    // null: every hospital of the dataset; else a JSON list of hospital ids.
    .addColumn('hospitals', 'jsonb')
    .addColumn('expires_at', 'timestamptz')
    .addColumn('created_at', 'timestamptz', (column) => column.notNull().defaultTo(sql`now()`))
    .execute();
  await db.schema
    .createIndex('dataset_grants_user')
    .on('dataset_grants')
    .columns(['user_id', 'dataset_id'])
    .execute();

  await db.schema
    .createTable('query_jobs')
    .addColumn('id', 'uuid', (column) => column.primaryKey())
    .addColumn('user_id', 'uuid', (column) => column.notNull().references('users.id'))
    .addColumn('dataset_id', 'text', (column) => column.notNull().references('datasets.id'))
    .addColumn('status', 'text', (column) =>
      column
        .notNull()
        .check(sql`status in ('queued', 'running', 'succeeded', 'failed', 'cancelled')`),
    )
    // The spec as submitted, its hash, and what running it fixed: the access level, the
    // releases read and the engine, so that a rerun reads the same data the same way.
    .addColumn('spec', 'jsonb', (column) => column.notNull())
    .addColumn('spec_sha256', 'text', (column) => column.notNull())
    .addColumn('access_level', 'text', (column) => column.notNull())
    .addColumn('engine', 'text', (column) => column.notNull())
    .addColumn('release_ids', 'jsonb')
    .addColumn('progress', 'jsonb')
    .addColumn('summary', 'jsonb')
    .addColumn('result_key', 'text')
    .addColumn('error', 'jsonb')
    .addColumn('cancel_requested', 'boolean', (column) => column.notNull().defaultTo(false))
    .addColumn('attempts', 'integer', (column) => column.notNull().defaultTo(0))
    .addColumn('worker_id', 'text')
    .addColumn('heartbeat_at', 'timestamptz')
    .addColumn('created_at', 'timestamptz', (column) => column.notNull().defaultTo(sql`now()`))
    .addColumn('started_at', 'timestamptz')
    .addColumn('finished_at', 'timestamptz')
    .execute();
  await db.schema
    .createIndex('query_jobs_queue')
    .on('query_jobs')
    .columns(['status', 'created_at'])
    .execute();
  await db.schema
    .createIndex('query_jobs_user')
    .on('query_jobs')
    .columns(['user_id', 'created_at'])
    .execute();
}

export async function down(db: Kysely<unknown>): Promise<void> {
  for (const table of ['query_jobs', 'dataset_grants', 'api_tokens', 'users']) {
    await db.schema.dropTable(table).execute();
  }
}
