import { randomUUID } from 'node:crypto';
import type { CatalogDb } from './catalog.ts';

export type AccessLevel = 'aggregate' | 'row';

export type Grant = {
  id: string;
  datasetId: string;
  userId: string;
  level: AccessLevel;
  /** The hospitals whose data the grant covers; null: all of the dataset's hospitals. */
  hospitals: string[] | null;
  expiresAt: Date | null;
  createdAt: Date;
};

/** Who may query which dataset, at which level, for which hospitals, until when. */
export function grantsRepository(db: CatalogDb) {
  const toGrant = (row: {
    id: string;
    dataset_id: string;
    user_id: string;
    level: AccessLevel;
    hospitals: string[] | null;
    expires_at: Date | null;
    created_at: Date;
  }): Grant => ({
    id: row.id,
    datasetId: row.dataset_id,
    userId: row.user_id,
    level: row.level,
    hospitals: row.hospitals,
    expiresAt: row.expires_at,
    createdAt: row.created_at,
  });

  return {
    async add(grant: Omit<Grant, 'id' | 'createdAt'>): Promise<Grant> {
      const row = await db
        .insertInto('dataset_grants')
        .values({
          id: randomUUID(),
          dataset_id: grant.datasetId,
          user_id: grant.userId,
          level: grant.level,
          hospitals: grant.hospitals === null ? null : JSON.stringify(grant.hospitals),
          expires_at: grant.expiresAt,
        })
        .returningAll()
        .executeTakeFirstOrThrow();
      return toGrant(row);
    },

    /** The user's grants on the dataset that have not expired at `now`. */
    async active(userId: string, datasetId: string, now: Date): Promise<Grant[]> {
      const rows = await db
        .selectFrom('dataset_grants')
        .selectAll()
        .where('user_id', '=', userId)
        .where('dataset_id', '=', datasetId)
        .where((eb) => eb.or([eb('expires_at', 'is', null), eb('expires_at', '>', now)]))
        .execute();
      return rows.map(toGrant);
    },

    async list(filter: { userId?: string; datasetId?: string } = {}): Promise<Grant[]> {
      let query = db.selectFrom('dataset_grants').selectAll();
      if (filter.userId) query = query.where('user_id', '=', filter.userId);
      if (filter.datasetId) query = query.where('dataset_id', '=', filter.datasetId);
      const rows = await query.orderBy('created_at').execute();
      return rows.map(toGrant);
    },
  };
}
