import { mappedRole, oidc, oidcSettings, providerConfiguration } from '../../accounts/oidc.ts';
import type { Actor } from '../../audit/audit-log.ts';
import { credentialsRepository } from '../../catalog/credentials-repository.ts';
import { usersRepository, type User } from '../../catalog/users-repository.ts';
import { AppError } from '../../errors.ts';
import type { Platform } from '../../platform.ts';
import { addUser } from '../manage-access.ts';
import { changeRole } from './manage-users.ts';
import { openSession, type SignedIn } from './sign-in.ts';

/** How long the way through the provider may take. */
const pendingMinutes = 10;

function requireSettings(platform: Platform) {
  const settings = oidcSettings(platform.env);
  if (!settings) throw new AppError('sso_not_configured', 'Single sign-on is not configured here');
  return settings;
}

/** Only a path on this site: the provider's round trip must not become an open redirect. */
export function safeReturnPath(value: string | undefined): string {
  return value && /^\/(?![/\\])/.test(value) ? value : '/';
}

/**
 * Starts an SSO sign-in: remembers the state, nonce and PKCE verifier for the callback and
 * returns the provider's authorization URL to send the browser to, and the state to keep in
 * the browser's cookie.
 */
export async function startOidcSignIn(
  platform: Platform,
  returnTo: string | undefined,
): Promise<{ url: string; state: string }> {
  const settings = requireSettings(platform);
  const configuration = await providerConfiguration(settings).catch(() => {
    throw new AppError('sso_unavailable', 'The sign-on provider cannot be reached; try later');
  });
  const state = oidc.randomState();
  const nonce = oidc.randomNonce();
  const codeVerifier = oidc.randomPKCECodeVerifier();
  const db = platform.catalog.db;
  await db
    .deleteFrom('oidc_logins')
    .where('created_at', '<', new Date(Date.now() - pendingMinutes * 60_000))
    .execute();
  await db
    .insertInto('oidc_logins')
    .values({
      state,
      nonce,
      code_verifier: codeVerifier,
      return_to: safeReturnPath(returnTo),
    })
    .execute();
  const url = oidc.buildAuthorizationUrl(configuration, {
    redirect_uri: settings.redirectUrl.href,
    scope: 'openid email profile',
    state,
    nonce,
    code_challenge: await oidc.calculatePKCECodeChallenge(codeVerifier),
    code_challenge_method: 'S256',
  });
  return { url: url.href, state };
}

/**
 * Finishes an SSO sign-in at the callback: checks that this browser started it, exchanges the
 * code (PKCE, nonce and ID token checked by openid-client), finds the account (by its provider
 * identity, else by a verified e-mail, else creates it when allowed), applies the role the
 * claims map to, and opens a session. Every outcome is audited.
 */
export async function finishOidcSignIn(
  platform: Platform,
  input: {
    /** The callback's path and query as the browser asked for it. */
    requestUrl: string;
    stateCookie: string | undefined;
    source: string;
    userAgent?: string;
  },
): Promise<SignedIn & { returnTo: string }> {
  const settings = requireSettings(platform);
  const currentUrl = new URL(input.requestUrl, settings.redirectUrl);
  const state = currentUrl.searchParams.get('state') ?? '';
  const anonymous: Actor = { userId: null, name: null, source: input.source };
  const refuse = async (actor: Actor, reason: string, message: string) => {
    await platform.audit.record({
      action: 'login',
      actor,
      outcome: 'failure',
      details: { method: 'oidc', reason },
    });
    return new AppError('sign_in_failed', message);
  };

  const db = platform.catalog.db;
  const pending = await db
    .deleteFrom('oidc_logins')
    .where('state', '=', state)
    .returningAll()
    .executeTakeFirst();
  if (!pending || input.stateCookie !== state) {
    throw await refuse(anonymous, 'unknown state', 'The sign-in was not started here; start again');
  }
  if (pending.created_at.getTime() < Date.now() - pendingMinutes * 60_000) {
    throw await refuse(anonymous, 'expired', 'The sign-in took too long; start again');
  }

  let claims: Record<string, unknown>;
  try {
    const tokens = await oidc.authorizationCodeGrant(
      await providerConfiguration(settings),
      currentUrl,
      {
        pkceCodeVerifier: pending.code_verifier,
        expectedState: state,
        expectedNonce: pending.nonce,
      },
    );
    claims = { ...tokens.claims() };
    // Groups and roles often come with the userinfo rather than in the ID token.
    if (claims[settings.roleClaim] === undefined && tokens.access_token) {
      const info = await oidc.fetchUserInfo(
        await providerConfiguration(settings),
        tokens.access_token,
        String(claims.sub),
      );
      claims = { ...info, ...claims };
    }
  } catch {
    throw await refuse(
      anonymous,
      'provider refused the code',
      'The sign-on provider did not confirm you; start again',
    );
  }

  const subject = `${settings.issuer.href} ${String(claims.sub)}`;
  const email = typeof claims.email === 'string' ? claims.email : null;
  const named: Actor = { userId: null, name: email ?? subject, source: input.source };
  const role = mappedRole(settings, claims);
  const users = usersRepository(db);
  let user: User | undefined = await users.bySubject(subject);
  if (!user && email && claims.email_verified === true) {
    user = await users.byEmail(email);
    if (user) await users.linkSubject(user.id, subject);
  }
  const provisioner: Actor = { userId: null, name: 'single sign-on', source: input.source };
  if (!user) {
    if (!settings.createAccounts || !role || !email || claims.email_verified !== true) {
      throw await refuse(
        named,
        'no account',
        'There is no medlake account for you; ask an administrator for one',
      );
    }
    const name = typeof claims.name === 'string' && claims.name ? claims.name : email;
    user = await addUser(platform, provisioner, { email, name, role });
    await users.linkSubject(user.id, subject);
  }
  if (user.disabledAt !== null) {
    throw await refuse(
      { ...named, userId: user.id, name: user.email },
      'account disabled',
      'Your medlake account is disabled',
    );
  }
  if (role && role !== user.role) {
    user = await changeRole(platform, provisioner, { email: user.email, role }).catch(
      (error: unknown) => {
        // The last admin stays admin whatever the provider says.
        if (error instanceof AppError && error.code === 'last_admin') return user as User;
        throw error;
      },
    );
  }

  const now = new Date();
  await credentialsRepository(db).recordSuccess(user.id, now);
  const opened = await openSession(platform, user, 'oidc', input, now);
  await platform.audit.record({
    action: 'login',
    actor: { userId: user.id, name: user.email, source: input.source },
    target: `session:${opened.session.id}`,
    details: { method: 'oidc', role: user.role },
  });
  return { ...opened, returnTo: pending.return_to };
}
