import { z } from 'zod';
import { userRoleSchema, type TokenScope } from '@medlake/shared';
import type { Actor } from '../audit/audit-log.ts';
import type { CatalogDb } from '../catalog/catalog.ts';
import { datasetsRepository } from '../catalog/datasets-repository.ts';
import { projectsRepository } from '../catalog/projects-repository.ts';
import { grantsRepository, type AccessLevel, type Grant } from '../catalog/grants-repository.ts';
import { hospitalsRepository } from '../catalog/hospitals-repository.ts';
import type { UserRole } from '../catalog/schema.ts';
import { usersRepository, type User } from '../catalog/users-repository.ts';
import { AppError, notFound } from '../errors.ts';
import { scopesOfRole } from '../policy.ts';
import type { Platform } from '../platform.ts';

export const userRoles = userRoleSchema.options;

const newUserSchema = z.object({
  email: z.email(),
  name: z.string().min(1).max(200),
  role: z.enum(userRoles),
});

export async function addUser(
  platform: Platform,
  actor: Actor,
  input: { email: string; name: string; role: UserRole },
): Promise<User> {
  const parsed = newUserSchema.safeParse(input);
  if (!parsed.success) {
    throw new AppError(
      'invalid_input',
      `The user is invalid: ${parsed.error.issues[0]?.path.join('.')}: ${parsed.error.issues[0]?.message}`,
    );
  }
  const users = usersRepository(platform.catalog.db);
  if (await users.byEmail(parsed.data.email)) {
    throw new AppError('already_exists', `A user with e-mail ${parsed.data.email} exists`);
  }
  return platform.catalog.db.transaction().execute(async (trx) => {
    const user = await usersRepository(trx).create(parsed.data);
    await platform.audit.record(
      {
        action: 'user.create',
        actor,
        target: `user:${user.id}`,
        details: { email: user.email, role: user.role },
      },
      trx,
    );
    return user;
  });
}

export async function requireUser(platform: Platform, email: string): Promise<User> {
  const user = await usersRepository(platform.catalog.db).byEmail(email);
  if (!user) throw notFound('user_not_found', `User ${email}`);
  return user;
}

/**
 * Gives a user, or every member of a project, access to a dataset at a level, optionally for
 * some hospitals and until a date. With a transaction, the grant commits with the caller's
 * other changes (an access request's decision).
 */
export async function grantDatasetAccess(
  platform: Platform,
  actor: Actor,
  input: {
    email?: string;
    projectId?: string;
    datasetId: string;
    level: AccessLevel;
    hospitals?: string[];
    expiresAt?: Date;
  },
  trx?: CatalogDb,
): Promise<Grant> {
  if ((input.email === undefined) === (input.projectId === undefined)) {
    throw new AppError('invalid_input', 'A grant goes to one user or to one project');
  }
  // Inside the caller's transaction every read goes through it too: PGlite has one connection.
  const db = trx ?? platform.catalog.db;
  const user = input.email === undefined ? null : await usersRepository(db).byEmail(input.email);
  if (input.email !== undefined && !user) throw notFound('user_not_found', `User ${input.email}`);
  if (input.projectId !== undefined && !(await projectsRepository(db).get(input.projectId))) {
    throw notFound('project_not_found', `Project ${input.projectId}`);
  }
  if (!(await datasetsRepository(db).get(input.datasetId))) {
    throw notFound('dataset_not_found', `Dataset ${input.datasetId}`);
  }
  const hospitals = hospitalsRepository(db);
  for (const id of input.hospitals ?? []) {
    if (!(await hospitals.get(id))) throw notFound('hospital_not_found', `Hospital ${id}`);
  }
  if (input.expiresAt && input.expiresAt.getTime() <= Date.now()) {
    throw new AppError('invalid_input', 'The grant would expire before it starts');
  }
  const add = async (tx: CatalogDb) => {
    const holder = { userId: user?.id ?? null, projectId: input.projectId ?? null };
    const existing = await grantsRepository(tx).inForceFor(
      holder,
      input.datasetId,
      input.level,
      new Date(),
    );
    if (existing) throw duplicateGrant(input, existing);
    const grant = await grantsRepository(tx).add({
      datasetId: input.datasetId,
      userId: user?.id ?? null,
      projectId: input.projectId ?? null,
      level: input.level,
      hospitals: input.hospitals && input.hospitals.length > 0 ? input.hospitals : null,
      expiresAt: input.expiresAt ?? null,
    });
    await platform.audit.record(
      {
        action: 'grant.add',
        actor,
        target: `grant:${grant.id}`,
        details: {
          user: grant.userId,
          project: grant.projectId,
          dataset: grant.datasetId,
          level: grant.level,
          hospitals: grant.hospitals,
          expiresAt: grant.expiresAt,
        },
      },
      tx,
    );
    return grant;
  };
  try {
    return await (trx ? add(trx) : platform.catalog.db.transaction().execute(add));
  } catch (error) {
    // Two admins pressing Grant at once: the index keeps one, the other is told so.
    if ((error as { code?: unknown }).code === '23505') throw duplicateGrant(input);
    throw error;
  }
}

function duplicateGrant(
  input: { email?: string; projectId?: string; datasetId: string; level: AccessLevel },
  existing?: Grant,
): AppError {
  const holder = input.email ?? `project ${input.projectId}`;
  const until = existing?.expiresAt
    ? ` until ${existing.expiresAt.toISOString().slice(0, 10)}`
    : existing
      ? ' with no end date'
      : '';
  return new AppError(
    'grant_exists',
    `${holder} already has ${input.level} access to dataset ${input.datasetId}${until}; ` +
      'revoke that grant first to change its hospitals or end date',
  );
}

/**
 * Revokes a grant at once and for good (a revoked grant never comes back; a new one is made
 * instead); queries of its holders that wait or run after it are refused. Being the only grant
 * in force of its holder, dataset and level, it ends that access.
 */
export async function revokeGrant(
  platform: Platform,
  actor: Actor,
  grantId: string,
): Promise<Grant> {
  return platform.catalog.db.transaction().execute(async (trx) => {
    const grants = grantsRepository(trx);
    if (!(await grants.revoke(grantId, new Date())))
      throw notFound('grant_not_found', `Grant ${grantId}`);
    const grant = await grants.get(grantId);
    await platform.audit.record(
      {
        action: 'grant.revoke',
        actor,
        target: `grant:${grantId}`,
        details: { user: grant?.userId, project: grant?.projectId, dataset: grant?.datasetId },
      },
      trx,
    );
    return grant as Grant;
  });
}

/**
 * A personal API token for scripts; shown once. Its scopes are those asked for, or by default
 * every scope the user's role can use; a scope the role cannot use is refused.
 */
export async function createApiToken(
  platform: Platform,
  actor: Actor,
  input: { email: string; name: string; days: number; scopes?: readonly TokenScope[] },
): Promise<{ id: string; token: string; expiresAt: Date; scopes: TokenScope[] }> {
  const user = await requireUser(platform, input.email);
  if (!Number.isInteger(input.days) || input.days < 1 || input.days > 366) {
    throw new AppError('invalid_input', 'A token lasts from 1 to 366 days', [
      { path: 'days', message: 'from 1 to 366' },
    ]);
  }
  const usable = scopesOfRole(user.role);
  const scopes = [...new Set(input.scopes ?? usable)];
  const unusable = scopes.filter((scope) => !usable.includes(scope));
  if (scopes.length === 0 || unusable.length > 0) {
    throw new AppError(
      'invalid_input',
      `A ${user.role}'s token can have the scopes ${usable.join(', ')}`,
      [{ path: 'scopes', message: `choose from ${usable.join(', ')}` }],
    );
  }
  const created = await usersRepository(platform.catalog.db).createToken(user.id, {
    name: input.name,
    expiresAt: new Date(Date.now() + input.days * 86_400_000),
    scopes,
  });
  await platform.audit.record({
    action: 'token.create',
    actor,
    target: `token:${created.id}`,
    details: { user: user.id, name: input.name, scopes, expiresAt: created.expiresAt },
  });
  return { ...created, scopes };
}

/** A page of the grants in force, with the e-mails of the users holding them. */
export async function pageGrants(
  platform: Platform,
  filter: { userId?: string; datasetId?: string; projectId?: string },
  page: { limit: number; offset: number },
): Promise<{ grants: Grant[]; total: number; emails: Map<string, string> }> {
  const found = await grantsRepository(platform.catalog.db).page(filter, page);
  const emails = await usersRepository(platform.catalog.db).emailsOf(
    found.grants.flatMap((grant) => (grant.userId ? [grant.userId] : [])),
  );
  return { ...found, emails };
}
