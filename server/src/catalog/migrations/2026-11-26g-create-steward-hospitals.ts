import { sql, type Kysely } from 'kysely';

export async function up(db: Kysely<unknown>): Promise<void> {
  // Which hospitals each data steward uploads for (and sees the reports of).
  await db.schema
    .createTable('steward_hospitals')
    .addColumn('user_id', 'uuid', (column) => column.notNull().references('users.id'))
    .addColumn('hospital_id', 'text', (column) => column.notNull().references('hospitals.id'))
    .addColumn('created_at', 'timestamptz', (column) => column.notNull().defaultTo(sql`now()`))
    .addPrimaryKeyConstraint('steward_hospitals_pk', ['user_id', 'hospital_id'])
    .execute();

  // Who started a job (an upload's steward); null for the CLI operator and older jobs. The
  // hospital of an ingest is a column of its own, so that a steward's list is one index read.
  await db.schema
    .alterTable('jobs')
    .addColumn('user_id', 'uuid', (column) => column.references('users.id'))
    .addColumn('hospital_id', 'text')
    .execute();
  await sql`update jobs set hospital_id = params->>'hospitalId' where kind = 'ingest'`.execute(db);
  await db.schema
    .createIndex('jobs_hospital')
    .on('jobs')
    .columns(['kind', 'hospital_id', 'started_at'])
    .execute();
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await db.schema.dropIndex('jobs_hospital').execute();
  await db.schema.alterTable('jobs').dropColumn('hospital_id').dropColumn('user_id').execute();
  await db.schema.dropTable('steward_hospitals').execute();
}
