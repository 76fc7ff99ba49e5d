import type { CatalogDb } from './catalog.ts';

/** Which hospitals each data steward uploads for. */
export function stewardsRepository(db: CatalogDb) {
  return {
    async hospitalsOf(userId: string): Promise<string[]> {
      const rows = await db
        .selectFrom('steward_hospitals')
        .select('hospital_id')
        .where('user_id', '=', userId)
        .orderBy('hospital_id')
        .execute();
      return rows.map((row) => row.hospital_id);
    },

    /** Adds the assignment; false when it was there already. */
    async assign(userId: string, hospitalId: string): Promise<boolean> {
      const inserted = await db
        .insertInto('steward_hospitals')
        .values({ user_id: userId, hospital_id: hospitalId })
        .onConflict((conflict) => conflict.columns(['user_id', 'hospital_id']).doNothing())
        .returning('user_id')
        .execute();
      return inserted.length === 1;
    },

    /** Removes the assignment; false when there was none. */
    async unassign(userId: string, hospitalId: string): Promise<boolean> {
      const result = await db
        .deleteFrom('steward_hospitals')
        .where('user_id', '=', userId)
        .where('hospital_id', '=', hospitalId)
        .executeTakeFirst();
      return Number(result.numDeletedRows) === 1;
    },
  };
}
