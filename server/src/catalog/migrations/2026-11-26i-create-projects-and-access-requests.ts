import { sql, type Kysely } from 'kysely';

export async function up(db: Kysely<unknown>): Promise<void> {
  // A project is a group of researchers that a grant can be given to as a whole.
  await db.schema
    .createTable('projects')
    .addColumn('id', 'text', (column) => column.primaryKey())
    .addColumn('name', 'text', (column) => column.notNull())
    .addColumn('description', 'text', (column) => column.notNull().defaultTo(''))
    .addColumn('created_at', 'timestamptz', (column) => column.notNull().defaultTo(sql`now()`))
    .execute();
  await db.schema
    .createTable('project_members')
    .addColumn('project_id', 'text', (column) => column.notNull().references('projects.id'))
    .addColumn('user_id', 'uuid', (column) => column.notNull().references('users.id'))
    .addColumn('created_at', 'timestamptz', (column) => column.notNull().defaultTo(sql`now()`))
    .addPrimaryKeyConstraint('project_members_pk', ['project_id', 'user_id'])
    .execute();
  await db.schema
    .createIndex('project_members_user')
    .on('project_members')
    .column('user_id')
    .execute();

  // A grant goes to one user or to one project; a revoked grant stays on record.
  await db.schema
    .alterTable('dataset_grants')
    .alterColumn('user_id', (column) => column.dropNotNull())
    .execute();
  await db.schema
    .alterTable('dataset_grants')
    .addColumn('project_id', 'text', (column) => column.references('projects.id'))
    .addColumn('revoked_at', 'timestamptz')
    .execute();
  await db.schema
    .alterTable('dataset_grants')
    .addCheckConstraint('dataset_grants_one_holder', sql`(user_id is null) <> (project_id is null)`)
    .execute();
  await db.schema
    .createIndex('dataset_grants_project')
    .on('dataset_grants')
    .columns(['project_id', 'dataset_id'])
    .execute();

  // A researcher's request for access to a dataset, and the admin's decision on it.
  await db.schema
    .createTable('access_requests')
    .addColumn('id', 'uuid', (column) => column.primaryKey())
    .addColumn('user_id', 'uuid', (column) => column.notNull().references('users.id'))
    .addColumn('dataset_id', 'text', (column) => column.notNull().references('datasets.id'))
    .addColumn('purpose', 'text', (column) => column.notNull())
    .addColumn('level', 'text', (column) =>
      column.notNull().check(sql`level in ('aggregate', 'row')`),
    )
    // The data-use terms the researcher accepted: the dataset's contract version and when.
    .addColumn('terms_version', 'integer', (column) => column.notNull())
    .addColumn('terms_accepted_at', 'timestamptz', (column) => column.notNull())
    .addColumn('status', 'text', (column) =>
      column.notNull().check(sql`status in ('pending', 'approved', 'rejected')`),
    )
    .addColumn('decided_by', 'uuid', (column) => column.references('users.id'))
    .addColumn('decided_at', 'timestamptz')
    .addColumn('decision_reason', 'text')
    .addColumn('grant_id', 'uuid', (column) => column.references('dataset_grants.id'))
    .addColumn('created_at', 'timestamptz', (column) => column.notNull().defaultTo(sql`now()`))
    .execute();
  await db.schema
    .createIndex('access_requests_status')
    .on('access_requests')
    .columns(['status', 'created_at'])
    .execute();
  await db.schema
    .createIndex('access_requests_user')
    .on('access_requests')
    .columns(['user_id', 'created_at'])
    .execute();
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await db.schema.dropTable('access_requests').execute();
  await db.schema.dropIndex('dataset_grants_project').execute();
  await db.schema
    .alterTable('dataset_grants')
    .dropConstraint('dataset_grants_one_holder')
    .execute();
  await db.schema
    .alterTable('dataset_grants')
    .dropColumn('project_id')
    .dropColumn('revoked_at')
    .execute();
  await db.schema
    .alterTable('dataset_grants')
    .alterColumn('user_id', (column) => column.setNotNull())
    .execute();
  await db.schema.dropTable('project_members').execute();
  await db.schema.dropTable('projects').execute();
}
