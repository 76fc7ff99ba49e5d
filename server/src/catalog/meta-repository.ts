import type { CatalogDb } from './catalog.ts';

/** Installation-wide key/value facts kept in the catalog's `meta` table. */
export function metaRepository(db: CatalogDb) {
  return {
    async get<T>(key: string): Promise<T | undefined> {
      const row = await db
        .selectFrom('meta')
        .select('value')
        .where('key', '=', key)
        .executeTakeFirst();
      return row?.value as T | undefined;
    },

    async set(key: string, value: unknown): Promise<void> {
      const json = JSON.stringify(value);
      await db
        .insertInto('meta')
        .values({ key, value: json })
        .onConflict((conflict) =>
          conflict.column('key').doUpdateSet({ value: json, updated_at: new Date() }),
        )
        .execute();
    },

    /** Sets the key only if it is absent, and returns whichever value is stored. */
    async getOrCreate<T>(key: string, create: () => T): Promise<T> {
      await db
        .insertInto('meta')
        .values({ key, value: JSON.stringify(create()) })
        .onConflict((conflict) => conflict.column('key').doNothing())
        .execute();
      return (await this.get<T>(key)) as T;
    },

    async delete(key: string): Promise<boolean> {
      const result = await db.deleteFrom('meta').where('key', '=', key).executeTakeFirst();
      return result.numDeletedRows > 0n;
    },
  };
}

export type MetaRepository = ReturnType<typeof metaRepository>;
