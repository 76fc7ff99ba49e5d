import { hashPassword, oneTimePassword } from '../../accounts/passwords.ts';
import type { Actor } from '../../audit/audit-log.ts';
import { credentialsRepository } from '../../catalog/credentials-repository.ts';
import type { UserRole } from '../../catalog/schema.ts';
import { hospitalsRepository } from '../../catalog/hospitals-repository.ts';
import { sessionsRepository } from '../../catalog/sessions-repository.ts';
import { stewardsRepository } from '../../catalog/stewards-repository.ts';
import { usersRepository, type User } from '../../catalog/users-repository.ts';
import { AppError, notFound } from '../../errors.ts';
import type { Platform } from '../../platform.ts';
import { addUser, requireUser } from '../manage-access.ts';

/** The first admin's login on a new installation. */
export const firstAdminEmail = 'admin@medlake.local';

/**
 * Creates a user who signs in with a password: they get a one-time password, shown once, to be
 * replaced at their first sign-in (admins then also set up an authenticator app).
 */
export async function createUserWithPassword(
  platform: Platform,
  actor: Actor,
  input: { email: string; name: string; role: UserRole },
): Promise<{ user: User; oneTimePassword: string }> {
  const user = await addUser(platform, actor, input);
  const password = oneTimePassword();
  await credentialsRepository(platform.catalog.db).setPassword(
    user.id,
    await hashPassword(password),
    true,
    new Date(),
  );
  return { user: await refreshed(platform, user.id), oneTimePassword: password };
}

/**
 * An admin's reset: a new one-time password, every session and the authenticator app (when
 * `resetTotp`) cleared. The user chooses a new password at their next sign-in.
 */
export async function resetPassword(
  platform: Platform,
  actor: Actor,
  input: { email: string; resetTotp?: boolean },
): Promise<{ user: User; oneTimePassword: string }> {
  const user = await requireUser(platform, input.email);
  const password = oneTimePassword();
  const hash = await hashPassword(password);
  const now = new Date();
  await platform.catalog.db.transaction().execute(async (trx) => {
    const credentials = credentialsRepository(trx);
    await credentials.setPassword(user.id, hash, true, now);
    if (input.resetTotp) await credentials.clearTotp(user.id);
    const ended = await sessionsRepository(trx).revokeAllOf(user.id, now);
    await platform.audit.record(
      {
        action: 'user.reset_password',
        actor,
        target: `user:${user.id}`,
        details: { resetTotp: input.resetTotp ?? false, sessionsEnded: ended },
      },
      trx,
    );
  });
  return { user: await refreshed(platform, user.id), oneTimePassword: password };
}

/** Disables (or enables again) an account; disabling ends its sessions and stops its tokens. */
export async function setUserDisabled(
  platform: Platform,
  actor: Actor,
  input: { email: string; disabled: boolean },
): Promise<User> {
  const user = await requireUser(platform, input.email);
  if (input.disabled && user.role === 'admin' && user.disabledAt === null) {
    await assertNotLastAdmin(platform);
  }
  const now = new Date();
  await platform.catalog.db.transaction().execute(async (trx) => {
    await usersRepository(trx).setDisabled(user.id, input.disabled ? now : null);
    const ended = input.disabled ? await sessionsRepository(trx).revokeAllOf(user.id, now) : 0;
    await platform.audit.record(
      {
        action: input.disabled ? 'user.disable' : 'user.enable',
        actor,
        target: `user:${user.id}`,
        details: input.disabled ? { sessionsEnded: ended } : {},
      },
      trx,
    );
  });
  return refreshed(platform, user.id);
}

/** Gives a user another role. The last active admin keeps theirs. */
export async function changeRole(
  platform: Platform,
  actor: Actor,
  input: { email: string; role: UserRole },
): Promise<User> {
  const user = await requireUser(platform, input.email);
  if (user.role === input.role) return user;
  if (user.role === 'admin') await assertNotLastAdmin(platform);
  await platform.catalog.db.transaction().execute(async (trx) => {
    await usersRepository(trx).setRole(user.id, input.role);
    await platform.audit.record(
      {
        action: 'user.update',
        actor,
        target: `user:${user.id}`,
        details: { role: { from: user.role, to: input.role } },
      },
      trx,
    );
  });
  return refreshed(platform, user.id);
}

/**
 * Makes a steward a data steward of a hospital (or no longer one): they upload for it and see
 * its uploads' reports.
 */
export async function assignSteward(
  platform: Platform,
  actor: Actor,
  input: { email: string; hospitalId: string; assigned: boolean },
): Promise<string[]> {
  const user = await requireUser(platform, input.email);
  if (user.role !== 'steward') {
    throw new AppError('invalid_input', `${user.email} is a ${user.role}, not a steward`);
  }
  if (!(await hospitalsRepository(platform.catalog.db).get(input.hospitalId))) {
    throw notFound('hospital_not_found', `Hospital ${input.hospitalId}`);
  }
  await platform.catalog.db.transaction().execute(async (trx) => {
    const stewards = stewardsRepository(trx);
    const changed = input.assigned
      ? await stewards.assign(user.id, input.hospitalId)
      : await stewards.unassign(user.id, input.hospitalId);
    if (!changed) return;
    await platform.audit.record(
      {
        action: 'user.update',
        actor,
        target: `user:${user.id}`,
        details: { [input.assigned ? 'stewardOf' : 'noLongerStewardOf']: input.hospitalId },
      },
      trx,
    );
  });
  return stewardsRepository(platform.catalog.db).hospitalsOf(user.id);
}

/**
 * On an installation without an admin, makes the first one, with a one-time password to be
 * shown once to whoever started medlake. Returns nothing when there is an admin already.
 */
export async function ensureFirstAdmin(
  platform: Platform,
): Promise<{ email: string; oneTimePassword: string } | undefined> {
  if ((await usersRepository(platform.catalog.db).activeAdmins()) > 0) return undefined;
  const existing = await usersRepository(platform.catalog.db).byEmail(firstAdminEmail);
  const actor: Actor = { userId: null, name: 'first start', source: 'medlake' };
  const made = existing
    ? await resetPassword(platform, actor, { email: firstAdminEmail, resetTotp: true })
    : await createUserWithPassword(platform, actor, {
        email: firstAdminEmail,
        name: 'Administrator',
        role: 'admin',
      });
  if (made.user.role !== 'admin')
    await changeRole(platform, actor, { email: firstAdminEmail, role: 'admin' });
  if (made.user.disabledAt)
    await setUserDisabled(platform, actor, { email: firstAdminEmail, disabled: false });
  return { email: firstAdminEmail, oneTimePassword: made.oneTimePassword };
}

/** An installation always keeps an admin who can sign in. */
async function assertNotLastAdmin(platform: Platform): Promise<void> {
  if ((await usersRepository(platform.catalog.db).activeAdmins()) <= 1) {
    throw new AppError('last_admin', 'This is the last active admin; make another admin first');
  }
}

async function refreshed(platform: Platform, id: string): Promise<User> {
  const user = await usersRepository(platform.catalog.db).byId(id);
  if (!user) throw new AppError('user_not_found', 'User not found');
  return user;
}

/** The user with this id; a 404 when there is none. */
export async function findUser(platform: Platform, id: string): Promise<User> {
  const user = await usersRepository(platform.catalog.db).byId(id);
  if (!user) throw notFound('user_not_found', 'User');
  return user;
}

/** A page of users by e-mail, for the admin's list: of a role, or matching a search. */
export async function pageUsers(
  platform: Platform,
  page: { limit: number; offset: number },
  filter: { search?: string; role?: UserRole },
): Promise<{ users: User[]; total: number }> {
  return usersRepository(platform.catalog.db).page(page, filter);
}
