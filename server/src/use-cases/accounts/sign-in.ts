import { passwordMatches } from '../../accounts/passwords.ts';
import { acceptedTotpStep } from '../../accounts/totp.ts';
import type { Actor } from '../../audit/audit-log.ts';
import { credentialsRepository } from '../../catalog/credentials-repository.ts';
import { sessionsRepository, type Session } from '../../catalog/sessions-repository.ts';
import { usersRepository, type User } from '../../catalog/users-repository.ts';
import { AppError, markAudited } from '../../errors.ts';
import type { Platform } from '../../platform.ts';
import type { SessionNeed } from '@medlake/shared';
import { sessionNeeds } from '../../policy.ts';

export type SignedIn = { token: string; session: Session; user: User; needs: SessionNeed[] };

export type SignInRequest = {
  email: string;
  password: string;
  /** The six digits from the authenticator app, for accounts with TOTP. */
  code?: string;
  source: string;
  userAgent?: string;
};

const wrongCredentials = 'The e-mail or password is wrong';

/** How long until a time, as people say it: "1 minute", "14 minutes" (rounded up). */
function minutesUntil(until: Date, now: Date): string {
  const minutes = Math.max(1, Math.ceil((until.getTime() - now.getTime()) / 60_000));
  return minutes === 1 ? '1 minute' : `${minutes} minutes`;
}

/**
 * Signs in with e-mail and password (and TOTP code when the account has one) and opens a
 * session. Failures are audited and counted: an account is locked for a while after
 * MEDLAKE_LOGIN_MAX_FAILURES failures in a row, and an address that fails too often is
 * refused for the same while, whichever accounts it tries.
 */
export async function signInWithPassword(
  platform: Platform,
  request: SignInRequest,
  now = new Date(),
): Promise<SignedIn> {
  const { env } = platform;
  const lockMs = env.MEDLAKE_LOGIN_LOCK_MINUTES * 60_000;
  const tried: Actor = { userId: null, name: request.email.slice(0, 200), source: request.source };
  const fail = async (
    actor: Actor,
    reason: string,
    error: AppError,
    outcome: 'failure' | 'denied' = 'failure',
    details: Record<string, unknown> = {},
  ) => {
    await platform.audit.record({
      action: 'login',
      actor,
      outcome,
      details: { method: 'password', reason, ...details },
    });
    // One entry per failed sign-in: this one, with its reason.
    return markAudited(error);
  };

  const failures = await platform.audit.failedLoginsFrom(
    request.source,
    new Date(now.getTime() - lockMs),
  );
  if (failures >= env.MEDLAKE_LOGIN_MAX_FAILURES_PER_SOURCE) {
    throw await fail(
      tried,
      'too many failed sign-ins from this address',
      new AppError(
        'sign_in_throttled',
        `Too many failed sign-ins from your address. Try again in ${env.MEDLAKE_LOGIN_LOCK_MINUTES} minutes.`,
      ),
      'denied',
    );
  }

  const user = await usersRepository(platform.catalog.db).byEmail(request.email);
  const credentials = user && (await credentialsRepository(platform.catalog.db).get(user.id));
  if (!user || !credentials || user.disabledAt !== null || credentials.passwordHash === null) {
    await passwordMatches(null, request.password);
    throw await fail(
      tried,
      user ? 'account disabled or without a password' : 'unknown e-mail',
      new AppError('sign_in_failed', wrongCredentials),
    );
  }
  const actor: Actor = { userId: user.id, name: user.email, source: request.source };
  if (credentials.lockedUntil && credentials.lockedUntil > now) {
    throw await fail(
      actor,
      'account locked',
      new AppError(
        'account_locked',
        `This account is locked after too many failed sign-ins. Try again in ${minutesUntil(credentials.lockedUntil, now)}.`,
      ),
      'denied',
    );
  }

  const repository = credentialsRepository(platform.catalog.db);
  const countFailure = async (reason: string) => {
    const { locked } = await repository.recordFailure(
      user.id,
      env.MEDLAKE_LOGIN_MAX_FAILURES,
      new Date(now.getTime() + lockMs),
    );
    return fail(actor, reason, new AppError('sign_in_failed', wrongCredentials), 'failure', {
      locked,
    });
  };
  if (!(await passwordMatches(credentials.passwordHash, request.password))) {
    throw await countFailure('wrong password');
  }
  let totpStep: number | undefined;
  if (credentials.totpEnabled && credentials.totpSecret) {
    if (!request.code) {
      // Not a failure: the password was right, and the client asks for the code next.
      throw new AppError('mfa_required', 'Enter the code from your authenticator app', [
        { path: 'code', message: 'a six-digit code from your authenticator app is needed' },
      ]);
    }
    const step = acceptedTotpStep(
      platform.totpSecrets.open(credentials.totpSecret),
      request.code,
      now,
      credentials.totpLastStep,
    );
    if (step === null) throw await countFailure('wrong authenticator code');
    totpStep = step;
  }

  await repository.recordSuccess(user.id, now, totpStep);
  const opened = await openSession(platform, user, 'password', request, now);
  await platform.audit.record({
    action: 'login',
    actor,
    target: `session:${opened.session.id}`,
    details: { method: 'password', totp: totpStep !== undefined, needs: opened.needs },
  });
  return opened;
}

/** Opens a session for a user who has proved who they are (password, or the OpenID provider). */
export async function openSession(
  platform: Platform,
  user: User,
  method: Session['method'],
  client: { source: string; userAgent?: string },
  now: Date,
): Promise<SignedIn> {
  const { token, session } = await sessionsRepository(platform.catalog.db).create({
    userId: user.id,
    method,
    source: client.source,
    userAgent: client.userAgent,
    now,
    expiresAt: new Date(now.getTime() + platform.env.MEDLAKE_SESSION_HOURS * 3_600_000),
  });
  return { token, session, user, needs: sessionNeeds(user, method) };
}

/** Ends the session (sign-out). */
export async function signOut(platform: Platform, session: Session, actor: Actor): Promise<void> {
  await sessionsRepository(platform.catalog.db).revoke(session.id, new Date());
  await platform.audit.record({ action: 'logout', actor, target: `session:${session.id}` });
}
