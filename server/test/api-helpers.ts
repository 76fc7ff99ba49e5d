import type { App } from '../src/app.ts';
import type { AccessLevel } from '../src/catalog/grants-repository.ts';
import type { UserRole } from '../src/catalog/schema.ts';
import type { User } from '../src/catalog/users-repository.ts';
import type { Platform } from '../src/platform.ts';
import { addUser, createApiToken, grantDatasetAccess } from '../src/use-cases/manage-access.ts';
import { testActor } from './helper.ts';

/**
 * Adds a user (a researcher named by their e-mail unless told otherwise), grants them the
 * dataset when a grant is given, and gives them an API token for a day, as the API's callers
 * in route tests need.
 */
export async function userWithToken(
  platform: Platform,
  email: string,
  options: {
    role?: UserRole;
    name?: string;
    grant?: { datasetId: string; level: AccessLevel } | undefined;
  } = {},
): Promise<{ user: User; token: string }> {
  const role = options.role ?? 'researcher';
  const user = await addUser(platform, testActor, { email, name: options.name ?? email, role });
  if (options.grant) await grantDatasetAccess(platform, testActor, { email, ...options.grant });
  const { token } = await createApiToken(platform, testActor, { email, name: 'test', days: 1 });
  return { user, token };
}

/**
 * API tokens of users who each hold one grant on the dataset, keyed by their e-mail: the level
 * given to each, or no grant at all where it is undefined.
 */
export async function tokensWithGrants(
  platform: Platform,
  datasetId: string,
  levels: Readonly<Record<string, AccessLevel | undefined>>,
): Promise<Record<string, string>> {
  const tokens: Record<string, string> = {};
  for (const [email, level] of Object.entries(levels)) {
    const grant = level ? { datasetId, level } : undefined;
    tokens[email] = (await userWithToken(platform, email, { grant })).token;
  }
  return tokens;
}

/**
 * API tokens of users with the roles given, keyed by their name: `{ stu: 'steward' }` adds Stu's
 * account as stu@example.org.
 */
export async function tokensWithRoles(
  platform: Platform,
  roles: Readonly<Record<string, UserRole>>,
): Promise<Record<string, string>> {
  const tokens: Record<string, string> = {};
  for (const [name, role] of Object.entries(roles)) {
    tokens[name] = (await userWithToken(platform, `${name}@example.org`, { role, name })).token;
  }
  return tokens;
}

/**
 * `call(who, method, url, payload?)`: a request to the test app with the API token `tokens`
 * holds for `who`. The app is asked for at each call, as tests build it in beforeAll.
 */
export function callWithTokens(app: () => App, tokens: Readonly<Record<string, string>>) {
  return (
    who: string,
    method: 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE',
    url: string,
    payload?: object,
  ) =>
    app().inject({
      method,
      url,
      headers: { authorization: `Bearer ${tokens[who]}` },
      ...(payload ? { payload } : {}),
    });
}
