import { sql, type Kysely } from 'kysely';

export async function up(db: Kysely<unknown>): Promise<void> {
  // The data dictionary's counts, computed when a release is published instead of by a lake
  // scan per request (use-cases/queries/dictionary-figures.ts). They are kept per scope: one
  // hospital where pseudonyms belong to one hospital, the whole dataset where hospitals share
  // an id space. `basis` names the releases the figures were counted over; a request whose
  // current releases differ counts them again. Datasets published before this migration have
  // no rows here and are counted on their first request.
  await db.schema
    .createTable('dictionary_scopes')
    .addColumn('dataset_id', 'text', (column) =>
      column.notNull().references('datasets.id').onDelete('cascade'),
    )
    // A hospital id, or '*' for a dataset whose hospitals share one id space.
    .addColumn('scope', 'text', (column) => column.notNull())
    // SHA-256 (hex) over the contract version and the sorted ids of the releases counted.
    .addColumn('basis', 'text', (column) => column.notNull())
    .addColumn('computed_at', 'timestamptz', (column) => column.notNull().defaultTo(sql`now()`))
    .addPrimaryKeyConstraint('dictionary_scopes_pkey', ['dataset_id', 'scope'])
    .execute();
  // Rows add up across hospitals, and label and unit are minimums: kept per hospital and code.
  await db.schema
    .createTable('dictionary_code_rows')
    .addColumn('dataset_id', 'text', (column) => column.notNull())
    .addColumn('scope', 'text', (column) => column.notNull())
    .addColumn('hospital_id', 'text', (column) => column.notNull())
    // Null for rows without a code, which form a group of their own as in a query.
    .addColumn('code', 'text')
    .addColumn('row_count', 'bigint', (column) => column.notNull())
    .addColumn('label', 'text')
    .addColumn('unit', 'text')
    .addForeignKeyConstraint(
      'dictionary_code_rows_scope_fkey',
      ['dataset_id', 'scope'],
      'dictionary_scopes',
      ['dataset_id', 'scope'],
      (constraint) => constraint.onDelete('cascade'),
    )
    .execute();
  await db.schema
    .createIndex('dictionary_code_rows_scope')
    .on('dictionary_code_rows')
    .columns(['dataset_id', 'scope'])
    .execute();
  // Distinct patients do not add up where one patient can be at several hospitals: they are
  // kept per code and per set of hospitals the patient has that code at, so that a grant's
  // hospitals count each patient once (the sets that meet them). `all_codes` is the total.
  await db.schema
    .createTable('dictionary_code_patients')
    .addColumn('dataset_id', 'text', (column) => column.notNull())
    .addColumn('scope', 'text', (column) => column.notNull())
    .addColumn('all_codes', 'boolean', (column) => column.notNull())
    .addColumn('code', 'text')
    .addColumn('hospitals', sql`text[]`, (column) => column.notNull())
    .addColumn('patients', 'bigint', (column) => column.notNull())
    .addForeignKeyConstraint(
      'dictionary_code_patients_scope_fkey',
      ['dataset_id', 'scope'],
      'dictionary_scopes',
      ['dataset_id', 'scope'],
      (constraint) => constraint.onDelete('cascade'),
    )
    .execute();
  await db.schema
    .createIndex('dictionary_code_patients_scope')
    .on('dictionary_code_patients')
    .columns(['dataset_id', 'scope'])
    .execute();
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await db.schema.dropTable('dictionary_code_patients').execute();
  await db.schema.dropTable('dictionary_code_rows').execute();
  await db.schema.dropTable('dictionary_scopes').execute();
}
