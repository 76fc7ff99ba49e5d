import { sql, type Kysely } from 'kysely';

export async function up(db: Kysely<unknown>): Promise<void> {
  // The release ledger follows the user as well as the holder (docs/privacy.md, "Holders and
  // users"): a cell records who asked for it, and each user's holders are listed (every holder
  // they had a result released to, every project they joined), so that a new result is checked
  // against everything the user was shown under any holder and everything each of their
  // projects was shown. Cells recorded before are given the user of their query where the
  // query is still in the catalog.
  await db.schema.alterTable('released_cells').addColumn('user_id', 'uuid').execute();
  await sql`
    update released_cells as c set user_id = j.user_id
    from query_jobs as j
    where j.id = c.query_id
  `.execute(db);
  await db.schema
    .createTable('ledger_holders')
    .addColumn('user_id', 'uuid', (column) => column.notNull())
    .addColumn('holder', 'text', (column) => column.notNull())
    .addColumn('since', 'timestamptz', (column) => column.notNull().defaultTo(sql`now()`))
    .addPrimaryKeyConstraint('ledger_holders_pk', ['user_id', 'holder'])
    .execute();
  await sql`
    insert into ledger_holders (user_id, holder, since)
    select user_id, holder, min(released_at)
    from released_cells
    where user_id is not null
    group by user_id, holder
  `.execute(db);
  await sql`
    insert into ledger_holders (user_id, holder, since)
    select user_id, 'project:' || project_id, created_at
    from project_members
    on conflict (user_id, holder) do nothing
  `.execute(db);
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await db.schema.dropTable('ledger_holders').execute();
  await db.schema.alterTable('released_cells').dropColumn('user_id').execute();
}
