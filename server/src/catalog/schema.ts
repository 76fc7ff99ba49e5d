import type { ColumnType, Generated } from 'kysely';

/** Installation-wide facts: the installation id, the demo-data marker and the like. */
export interface MetaTable {
  key: string;
  value: ColumnType<unknown, string, string>;
  updated_at: Generated<Date>;
}

/** The catalog's tables as Kysely sees them. Each migration that adds a table adds it here. */
export interface CatalogSchema {
  meta: MetaTable;
}
