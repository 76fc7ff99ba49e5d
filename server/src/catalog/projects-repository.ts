import type { CatalogDb } from './catalog.ts';
import { paged } from './paged.ts';

export type Project = {
  id: string;
  name: string;
  description: string;
  members: { userId: string; email: string }[];
  createdAt: Date;
};

type ProjectRow = { id: string; name: string; description: string; created_at: Date };

function toProjects(rows: ProjectRow[], members: Map<string, Project['members']>): Project[] {
  return rows.map((row) => ({
    id: row.id,
    name: row.name,
    description: row.description,
    members: members.get(row.id) ?? [],
    createdAt: row.created_at,
  }));
}

/** Projects: groups of researchers that grants can be given to. */
export function projectsRepository(db: CatalogDb) {
  const membersOf = async (ids: string[]) => {
    if (ids.length === 0) return new Map<string, Project['members']>();
    const rows = await db
      .selectFrom('project_members')
      .innerJoin('users', 'users.id', 'project_members.user_id')
      .select(['project_members.project_id', 'project_members.user_id', 'users.email'])
      .where('project_members.project_id', 'in', ids)
      .orderBy('project_members.created_at')
      .execute();
    const members = new Map<string, Project['members']>();
    for (const row of rows) {
      const member = { userId: row.user_id, email: row.email };
      members.set(row.project_id, [...(members.get(row.project_id) ?? []), member]);
    }
    return members;
  };

  return {
    async create(project: { id: string; name: string; description: string }): Promise<void> {
      await db.insertInto('projects').values(project).execute();
    },

    async get(id: string): Promise<Project | undefined> {
      const row = await db
        .selectFrom('projects')
        .selectAll()
        .where('id', '=', id)
        .executeTakeFirst();
      if (!row) return undefined;
      return toProjects([row], await membersOf([id]))[0];
    },

    async list(): Promise<Project[]> {
      const rows = await db.selectFrom('projects').selectAll().orderBy('id').execute();
      return toProjects(rows, await membersOf(rows.map((row) => row.id)));
    },

    /** A page of projects by id, and how many there are. */
    async page(page: {
      limit: number;
      offset: number;
    }): Promise<{ projects: Project[]; total: number }> {
      const { rows, total } = await paged(
        db.selectFrom('projects'),
        (query) => query.selectAll().orderBy('id'),
        page,
      );
      return { projects: toProjects(rows, await membersOf(rows.map((row) => row.id))), total };
    },

    /** The projects a user is a member of. */
    async listOfMember(userId: string): Promise<Project[]> {
      const rows = await db
        .selectFrom('projects')
        .selectAll()
        .where('id', 'in', (eb) =>
          eb.selectFrom('project_members').select('project_id').where('user_id', '=', userId),
        )
        .orderBy('id')
        .execute();
      return toProjects(rows, await membersOf(rows.map((row) => row.id)));
    },

    /** Adds a member; false when they were one already. */
    async addMember(projectId: string, userId: string): Promise<boolean> {
      const added = await db
        .insertInto('project_members')
        .values({ project_id: projectId, user_id: userId })
        .onConflict((conflict) => conflict.columns(['project_id', 'user_id']).doNothing())
        .returning('user_id')
        .execute();
      return added.length === 1;
    },

    /** Removes a member; false when they were none. */
    async removeMember(projectId: string, userId: string): Promise<boolean> {
      const result = await db
        .deleteFrom('project_members')
        .where('project_id', '=', projectId)
        .where('user_id', '=', userId)
        .executeTakeFirst();
      return Number(result.numDeletedRows) === 1;
    },
  };
}
