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
