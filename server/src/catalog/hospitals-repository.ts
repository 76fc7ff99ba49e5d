import type { CatalogDb } from './catalog.ts';

export type Hospital = { id: string; name: string; createdAt: Date };

/** Hospitals that deliver data. Their ids appear in lake paths, so they are short slugs. */
export function hospitalsRepository(db: CatalogDb) {
  return {
    async create(hospital: { id: string; name: string }): Promise<Hospital> {
      const row = await db
        .insertInto('hospitals')
        .values(hospital)
        .returningAll()
        .executeTakeFirstOrThrow();
      return { id: row.id, name: row.name, createdAt: row.created_at };
    },

    async get(id: string): Promise<Hospital | undefined> {
      const row = await db
        .selectFrom('hospitals')
        .selectAll()
        .where('id', '=', id)
        .executeTakeFirst();
      return row && { id: row.id, name: row.name, createdAt: row.created_at };
    },

    async list(): Promise<Hospital[]> {
      const rows = await db.selectFrom('hospitals').selectAll().orderBy('id').execute();
      return rows.map((row) => ({ id: row.id, name: row.name, createdAt: row.created_at }));
    },
  };
}
