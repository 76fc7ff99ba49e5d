import { randomUUID } from 'node:crypto';
import type { ExpressionBuilder, Selectable } from 'kysely';
import type { CatalogDb } from './catalog.ts';
import { paged } from './paged.ts';
import type { CatalogSchema, DatasetGrantsTable } from './schema.ts';

export type AccessLevel = 'aggregate' | 'row';

export type Grant = {
  id: string;
  datasetId: string;
  /** The grant's holder: one user, or every member of one project. */
  userId: string | null;
  projectId: string | null;
  level: AccessLevel;
  /** The hospitals whose data the grant covers; null: all of the dataset's hospitals. */
  hospitals: string[] | null;
  expiresAt: Date | null;
  createdAt: Date;
  revokedAt: Date | null;
};

export function toGrant(row: Selectable<DatasetGrantsTable>): Grant {
  return {
    id: row.id,
    datasetId: row.dataset_id,
    userId: row.user_id,
    projectId: row.project_id,
    level: row.level,
    hospitals: row.hospitals,
    expiresAt: row.expires_at,
    createdAt: row.created_at,
    revokedAt: row.revoked_at,
  };
}

/** Who may query which dataset, at which level, for which hospitals, until when. */
/** Grants the user holds: their own, and those of every project they are a member of. */
export function heldBy(userId: string) {
  return (eb: ExpressionBuilder<CatalogSchema, 'dataset_grants'>) =>
    eb.or([
      eb('user_id', '=', userId),
      eb(
        'project_id',
        'in',
        eb.selectFrom('project_members').select('project_id').where('user_id', '=', userId),
      ),
    ]);
}

export function grantsRepository(db: CatalogDb) {
  const inForce = (filter: { userId?: string; datasetId?: string; projectId?: string }) => {
    let query = db.selectFrom('dataset_grants').where('revoked_at', 'is', null);
    if (filter.userId) query = query.where('user_id', '=', filter.userId);
    if (filter.projectId) query = query.where('project_id', '=', filter.projectId);
    if (filter.datasetId) query = query.where('dataset_id', '=', filter.datasetId);
    return query;
  };

  return {
    async add(grant: Omit<Grant, 'id' | 'createdAt' | 'revokedAt'>): Promise<Grant> {
      const row = await db
        .insertInto('dataset_grants')
        .values({
          id: randomUUID(),
          dataset_id: grant.datasetId,
          user_id: grant.userId,
          project_id: grant.projectId,
          level: grant.level,
          hospitals: grant.hospitals === null ? null : JSON.stringify(grant.hospitals),
          expires_at: grant.expiresAt,
        })
        .returningAll()
        .executeTakeFirstOrThrow();
      return toGrant(row);
    },

    async get(id: string): Promise<Grant | undefined> {
      const row = await db
        .selectFrom('dataset_grants')
        .selectAll()
        .where('id', '=', id)
        .executeTakeFirst();
      return row && toGrant(row);
    },

    /**
     * The grants a user holds on the dataset at `now`, their own and their projects': not
     * revoked and not expired. An expired grant needs nobody to act to stop working.
     */
    async active(userId: string, datasetId: string, now: Date): Promise<Grant[]> {
      const rows = await db
        .selectFrom('dataset_grants')
        .selectAll()
        .where('dataset_id', '=', datasetId)
        .where('revoked_at', 'is', null)
        .where((eb) => eb.or([eb('expires_at', 'is', null), eb('expires_at', '>', now)]))
        .where(heldBy(userId))
        .execute();
      return rows.map(toGrant);
    },

    /**
     * The user's grant on the dataset (their own or a project's) that ended last, revoked or
     * expired by `now`: what tells a refused user why their access stopped.
     */
    async lastEnded(userId: string, datasetId: string, now: Date): Promise<Grant | undefined> {
      const rows = await db
        .selectFrom('dataset_grants')
        .selectAll()
        .where('dataset_id', '=', datasetId)
        .where((eb) => eb.or([eb('revoked_at', 'is not', null), eb('expires_at', '<=', now)]))
        .where(heldBy(userId))
        .execute();
      const endOf = (grant: Grant) => (grant.revokedAt ?? grant.expiresAt ?? now).getTime();
      return rows.map(toGrant).sort((a, b) => endOf(b) - endOf(a))[0];
    },

    /** Every grant in force matching the filter, oldest first. */
    async list(
      filter: { userId?: string; datasetId?: string; projectId?: string } = {},
    ): Promise<Grant[]> {
      const rows = await inForce(filter).selectAll().orderBy('created_at').execute();
      return rows.map(toGrant);
    },

    /** A page of the grants in force matching the filter, and how many there are. */
    async page(
      filter: { userId?: string; datasetId?: string; projectId?: string },
      page: { limit: number; offset: number },
    ): Promise<{ grants: Grant[]; total: number }> {
      const { rows, total } = await paged(
        inForce(filter),
        (query) => query.selectAll().orderBy('created_at').orderBy('id'),
        page,
      );
      return { grants: rows.map(toGrant), total };
    },

    /**
     * The holder's grant in force on the dataset at the level, if any: there is at most one.
     * Grants of theirs that expired before `now` are first ended (revoked as of their expiry),
     * so that an expired grant never stands in the way of a new one.
     */
    async inForceFor(
      holder: { userId: string | null; projectId: string | null },
      datasetId: string,
      level: AccessLevel,
      now: Date,
    ): Promise<Grant | undefined> {
      let expired = db
        .updateTable('dataset_grants')
        .set((eb) => ({ revoked_at: eb.ref('expires_at') }))
        .where('dataset_id', '=', datasetId)
        .where('level', '=', level)
        .where('revoked_at', 'is', null)
        .where('expires_at', '<=', now);
      let current = db
        .selectFrom('dataset_grants')
        .selectAll()
        .where('dataset_id', '=', datasetId)
        .where('level', '=', level)
        .where('revoked_at', 'is', null);
      expired =
        holder.userId === null
          ? expired.where('user_id', 'is', null)
          : expired.where('user_id', '=', holder.userId);
      expired =
        holder.projectId === null
          ? expired.where('project_id', 'is', null)
          : expired.where('project_id', '=', holder.projectId);
      current =
        holder.userId === null
          ? current.where('user_id', 'is', null)
          : current.where('user_id', '=', holder.userId);
      current =
        holder.projectId === null
          ? current.where('project_id', 'is', null)
          : current.where('project_id', '=', holder.projectId);
      await expired.execute();
      const row = await current.executeTakeFirst();
      return row && toGrant(row);
    },

    /** Revokes a grant; false when there is no such grant in force. */
    async revoke(id: string, now: Date): Promise<boolean> {
      const result = await db
        .updateTable('dataset_grants')
        .set({ revoked_at: now })
        .where('id', '=', id)
        .where('revoked_at', 'is', null)
        .executeTakeFirst();
      return Number(result.numUpdatedRows) === 1;
    },
  };
}
