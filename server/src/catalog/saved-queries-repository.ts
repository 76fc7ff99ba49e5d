import type { CatalogDb } from './catalog.ts';
import { paged } from './paged.ts';

export type SavedQuery = {
  id: string;
  userId: string;
  /** The author's e-mail, for the people a query is shared with. */
  author: string;
  projectId: string | null;
  datasetId: string;
  name: string;
  description: string;
  spec: unknown;
  createdAt: Date;
};

/** Query specs kept under a name, by their author or shared with a project. */
export function savedQueriesRepository(db: CatalogDb) {
  const base = () =>
    db
      .selectFrom('saved_queries')
      .innerJoin('users', 'users.id', 'saved_queries.user_id')
      .selectAll('saved_queries')
      .select('users.email as author');
  type Row = Awaited<ReturnType<ReturnType<typeof base>['executeTakeFirstOrThrow']>>;
  const toSavedQuery = (row: Row): SavedQuery => ({
    id: row.id,
    userId: row.user_id,
    author: row.author,
    projectId: row.project_id,
    datasetId: row.dataset_id,
    name: row.name,
    description: row.description,
    spec: row.spec,
    createdAt: row.created_at,
  });
  /** A user's own saved queries and those shared with a project they are a member of. */
  const visibleTo = (userId: string) =>
    base().where((eb) =>
      eb.or([
        eb('saved_queries.user_id', '=', userId),
        eb(
          'saved_queries.project_id',
          'in',
          eb.selectFrom('project_members').select('project_id').where('user_id', '=', userId),
        ),
      ]),
    );

  return {
    async create(query: Omit<SavedQuery, 'author' | 'createdAt'>): Promise<void> {
      await db
        .insertInto('saved_queries')
        .values({
          id: query.id,
          user_id: query.userId,
          project_id: query.projectId,
          dataset_id: query.datasetId,
          name: query.name,
          description: query.description,
          spec: JSON.stringify(query.spec),
        })
        .execute();
    },

    /** One saved query, if the user may see it. */
    async getVisible(id: string, userId: string): Promise<SavedQuery | undefined> {
      const row = await visibleTo(userId).where('saved_queries.id', '=', id).executeTakeFirst();
      return row && toSavedQuery(row);
    },

    /** A page of what the user may see, newest first, and how many there are in all. */
    async listVisible(
      userId: string,
      page: { limit: number; offset: number },
    ): Promise<{ queries: SavedQuery[]; total: number }> {
      const { rows, total } = await paged(
        visibleTo(userId).clearSelect(),
        (query) =>
          query
            .selectAll('saved_queries')
            .select('users.email as author')
            .orderBy('saved_queries.created_at', 'desc')
            .orderBy('saved_queries.id'),
        page,
      );
      return { queries: rows.map(toSavedQuery), total };
    },

    async update(
      id: string,
      change: Partial<
        Pick<SavedQuery, 'name' | 'description' | 'projectId' | 'datasetId' | 'spec'>
      >,
    ): Promise<void> {
      await db
        .updateTable('saved_queries')
        .set({
          ...(change.name !== undefined ? { name: change.name } : {}),
          ...(change.description !== undefined ? { description: change.description } : {}),
          ...(change.projectId !== undefined ? { project_id: change.projectId } : {}),
          ...(change.datasetId !== undefined ? { dataset_id: change.datasetId } : {}),
          ...(change.spec !== undefined ? { spec: JSON.stringify(change.spec) } : {}),
        })
        .where('id', '=', id)
        .execute();
    },

    async delete(id: string): Promise<void> {
      await db.deleteFrom('saved_queries').where('id', '=', id).execute();
    },
  };
}
