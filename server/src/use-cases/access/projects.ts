import type { Actor } from '../../audit/audit-log.ts';
import { projectsRepository, type Project } from '../../catalog/projects-repository.ts';
import { rememberLedgerHolder } from '../../catalog/released-cells-repository.ts';
import { AppError, notFound } from '../../errors.ts';
import type { Platform } from '../../platform.ts';
import { requireUser } from '../manage-access.ts';

const projectId = /^[a-z][a-z0-9-]{1,62}$/;

export async function createProject(
  platform: Platform,
  actor: Actor,
  input: { id: string; name: string; description?: string },
): Promise<Project> {
  if (!projectId.test(input.id)) {
    throw new AppError('invalid_input', 'A project id is lower-case words joined by dashes', [
      { path: 'id', message: 'lower-case words joined by dashes, e.g. diabetes-2026' },
    ]);
  }
  const projects = projectsRepository(platform.catalog.db);
  if (await projects.get(input.id))
    throw new AppError('already_exists', `Project ${input.id} exists`);
  await platform.catalog.db.transaction().execute(async (trx) => {
    await projectsRepository(trx).create({
      id: input.id,
      name: input.name,
      description: input.description ?? '',
    });
    await platform.audit.record(
      {
        action: 'project.create',
        actor,
        target: `project:${input.id}`,
        details: { name: input.name },
      },
      trx,
    );
  });
  return (await projects.get(input.id)) as Project;
}

/** Adds a researcher to a project (or removes them): they hold its grants while a member. */
export async function setProjectMember(
  platform: Platform,
  actor: Actor,
  input: { projectId: string; email: string; member: boolean },
): Promise<Project> {
  const projects = projectsRepository(platform.catalog.db);
  if (!(await projects.get(input.projectId)))
    throw notFound('project_not_found', `Project ${input.projectId}`);
  const user = await requireUser(platform, input.email);
  await platform.catalog.db.transaction().execute(async (trx) => {
    const changed = input.member
      ? await projectsRepository(trx).addMember(input.projectId, user.id)
      : await projectsRepository(trx).removeMember(input.projectId, user.id);
    if (!changed) return;
    // A member is taken to know what the project is shown, and keeps it on leaving: the release
    // ledger checks their results against the project's cells from now on.
    if (input.member) await rememberLedgerHolder(trx, user.id, `project:${input.projectId}`);
    await platform.audit.record(
      {
        action: input.member ? 'project.add_member' : 'project.remove_member',
        actor,
        target: `project:${input.projectId}`,
        details: { user: user.id },
      },
      trx,
    );
  });
  return (await projects.get(input.projectId)) as Project;
}

/** A page of projects by id, with their members. */
export async function pageProjects(
  platform: Platform,
  page: { limit: number; offset: number },
): Promise<{ projects: Project[]; total: number }> {
  return projectsRepository(platform.catalog.db).page(page);
}

/** The projects a user is a member of: whom they may share a saved query with. */
export async function listOwnProjects(platform: Platform, userId: string): Promise<Project[]> {
  return projectsRepository(platform.catalog.db).listOfMember(userId);
}
