import { sql, type Kysely } from 'kysely';

export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema
    .createTable('hospitals')
    .addColumn('id', 'text', (column) => column.primaryKey())
    .addColumn('name', 'text', (column) => column.notNull())
    .addColumn('created_at', 'timestamptz', (column) => column.notNull().defaultTo(sql`now()`))
    .execute();

  await db.schema
    .createTable('datasets')
    .addColumn('id', 'text', (column) => column.primaryKey())
    .addColumn('title', 'text', (column) => column.notNull())
    .addColumn('description', 'text', (column) => column.notNull().defaultTo(''))
    .addColumn('contract', 'jsonb', (column) => column.notNull())
    .addColumn('contract_version', 'integer', (column) => column.notNull().defaultTo(1))
    .addColumn('created_at', 'timestamptz', (column) => column.notNull().defaultTo(sql`now()`))
    .addColumn('updated_at', 'timestamptz', (column) => column.notNull().defaultTo(sql`now()`))
    .execute();

  // A hospital's own header names for a dataset's columns: { "their header": "column name" }.
  await db.schema
    .createTable('header_mappings')
    .addColumn('dataset_id', 'text', (column) => column.notNull().references('datasets.id'))
    .addColumn('hospital_id', 'text', (column) => column.notNull().references('hospitals.id'))
    .addColumn('mapping', 'jsonb', (column) => column.notNull())
    .addColumn('updated_at', 'timestamptz', (column) => column.notNull().defaultTo(sql`now()`))
    .addPrimaryKeyConstraint('header_mappings_pk', ['dataset_id', 'hospital_id'])
    .execute();

  await db.schema
    .createTable('jobs')
    .addColumn('id', 'uuid', (column) => column.primaryKey())
    .addColumn('kind', 'text', (column) => column.notNull())
    .addColumn('status', 'text', (column) =>
      column.notNull().check(sql`status in ('running', 'succeeded', 'failed')`),
    )
    .addColumn('params', 'jsonb', (column) => column.notNull())
    .addColumn('progress', 'jsonb')
    .addColumn('result', 'jsonb')
    .addColumn('error', 'jsonb')
    .addColumn('started_at', 'timestamptz', (column) => column.notNull().defaultTo(sql`now()`))
    .addColumn('finished_at', 'timestamptz')
    .execute();
  await db.schema.createIndex('jobs_status').on('jobs').column('status').execute();

  await db.schema
    .createTable('releases')
    .addColumn('id', 'uuid', (column) => column.primaryKey())
    .addColumn('dataset_id', 'text', (column) => column.notNull().references('datasets.id'))
    .addColumn('hospital_id', 'text', (column) => column.notNull().references('hospitals.id'))
    .addColumn('month', 'text', (column) => column.notNull())
    .addColumn('job_id', 'uuid', (column) => column.notNull().references('jobs.id'))
    .addColumn('contract_version', 'integer', (column) => column.notNull())
    .addColumn('content_sha256', 'text', (column) => column.notNull())
    .addColumn('source_bytes', 'bigint', (column) => column.notNull())
    .addColumn('row_count', 'bigint', (column) => column.notNull())
    .addColumn('rejected_row_count', 'bigint', (column) => column.notNull())
    .addColumn('files', 'jsonb', (column) => column.notNull())
    .addColumn('quality', 'jsonb', (column) => column.notNull())
    .addColumn('published_at', 'timestamptz', (column) => column.notNull().defaultTo(sql`now()`))
    .execute();
  await db.schema
    .createIndex('releases_partition')
    .on('releases')
    .columns(['dataset_id', 'hospital_id', 'month', 'published_at'])
    .execute();

  // The release that new queries read for each dataset, hospital and month.
  await db.schema
    .createTable('current_releases')
    .addColumn('dataset_id', 'text', (column) => column.notNull())
    .addColumn('hospital_id', 'text', (column) => column.notNull())
    .addColumn('month', 'text', (column) => column.notNull())
    .addColumn('release_id', 'uuid', (column) => column.notNull().references('releases.id'))
    .addPrimaryKeyConstraint('current_releases_pk', ['dataset_id', 'hospital_id', 'month'])
    .execute();
}

export async function down(db: Kysely<unknown>): Promise<void> {
  for (const table of [
    'current_releases',
    'releases',
    'jobs',
    'header_mappings',
    'datasets',
    'hospitals',
  ]) {
    await db.schema.dropTable(table).execute();
  }
}
