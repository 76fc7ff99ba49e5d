import {
  assertPasswordAcceptable,
  hashPassword,
  passwordMatches,
} from '../../accounts/passwords.ts';
import { acceptedTotpStep, newTotpSecret, totpUri } from '../../accounts/totp.ts';
import { credentialsRepository } from '../../catalog/credentials-repository.ts';
import { sessionsRepository } from '../../catalog/sessions-repository.ts';
import { usersRepository, type User } from '../../catalog/users-repository.ts';
import { actorOf, type Caller } from '../../caller.ts';
import { AppError } from '../../errors.ts';
import type { Platform } from '../../platform.ts';
import { openSession, type SignedIn } from './sign-in.ts';

/**
 * Changes the caller's own password, which needs the current one. Every session of the user
 * ends (a stolen session does not outlive the change); a browser gets a fresh one back.
 */
export async function changeOwnPassword(
  platform: Platform,
  caller: Caller,
  input: { currentPassword: string; newPassword: string; userAgent?: string },
): Promise<SignedIn> {
  const credentials = await credentialsRepository(platform.catalog.db).get(caller.user.id);
  if (!(await passwordMatches(credentials?.passwordHash ?? null, input.currentPassword))) {
    await platform.audit.record({
      action: 'password.change',
      actor: actorOf(caller),
      outcome: 'failure',
      details: { reason: 'wrong current password' },
    });
    throw new AppError('wrong_password', 'The current password is wrong', [
      { path: 'currentPassword', message: 'wrong password' },
    ]);
  }
  if (input.newPassword === input.currentPassword) {
    throw new AppError('password_rejected', 'Choose a password other than the current one', [
      { path: 'newPassword', message: 'the same as the current password' },
    ]);
  }
  assertPasswordAcceptable(input.newPassword, caller.user, 'newPassword');
  const now = new Date();
  const hash = await hashPassword(input.newPassword);
  await platform.catalog.db.transaction().execute(async (trx) => {
    await credentialsRepository(trx).setPassword(caller.user.id, hash, false, now);
    const ended = await sessionsRepository(trx).revokeAllOf(caller.user.id, now);
    await platform.audit.record(
      { action: 'password.change', actor: actorOf(caller), details: { sessionsEnded: ended } },
      trx,
    );
  });
  const user = await currentUser(platform, caller.user.id);
  return openSession(
    platform,
    user,
    'password',
    { source: caller.source, userAgent: input.userAgent },
    now,
  );
}

/**
 * Starts setting up an authenticator app: a new secret, shown once as an otpauth:// URI. It
 * takes effect when a code from the app confirms it. An account that already has one keeps
 * it: replacing a second factor is an admin's reset, not something a session may do alone.
 */
export async function beginTotpSetup(
  platform: Platform,
  caller: Caller,
): Promise<{ secret: string; uri: string }> {
  if (caller.user.totpEnabled) {
    throw new AppError(
      'mfa_already_set',
      'An authenticator app is already set up; an administrator can reset it',
    );
  }
  const secret = newTotpSecret();
  await credentialsRepository(platform.catalog.db).setPendingTotp(
    caller.user.id,
    platform.totpSecrets.seal(secret),
  );
  return { secret, uri: totpUri(secret, caller.user.email) };
}

export async function confirmTotpSetup(
  platform: Platform,
  caller: Caller,
  code: string,
): Promise<User> {
  const credentials = await credentialsRepository(platform.catalog.db).get(caller.user.id);
  if (!credentials?.totpSecret || credentials.totpEnabled) {
    throw new AppError('mfa_setup_not_started', 'Start the authenticator setup first');
  }
  const now = new Date();
  const step = acceptedTotpStep(platform.totpSecrets.open(credentials.totpSecret), code, now, null);
  if (step === null) {
    throw new AppError('code_mismatch', 'The code does not match; check the app and try again', [
      { path: 'code', message: 'not the current code of the new secret' },
    ]);
  }
  await credentialsRepository(platform.catalog.db).enableTotp(caller.user.id, now, step);
  await platform.audit.record({ action: 'totp.enable', actor: actorOf(caller) });
  return currentUser(platform, caller.user.id);
}

async function currentUser(platform: Platform, id: string): Promise<User> {
  const user = await usersRepository(platform.catalog.db).byId(id);
  if (!user) throw new AppError('user_not_found', 'User not found');
  return user;
}
