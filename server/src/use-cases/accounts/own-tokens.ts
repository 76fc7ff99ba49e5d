import type { TokenScope } from '@medlake/shared';
import { usersRepository, type ApiToken } from '../../catalog/users-repository.ts';
import { actorOf, type Caller } from '../../caller.ts';
import { AppError } from '../../errors.ts';
import type { Platform } from '../../platform.ts';
import { createApiToken } from '../manage-access.ts';

export async function listOwnTokens(platform: Platform, caller: Caller): Promise<ApiToken[]> {
  return usersRepository(platform.catalog.db).tokensOf(caller.user.id);
}

export async function createOwnToken(
  platform: Platform,
  caller: Caller,
  input: { name: string; days: number; scopes?: TokenScope[] },
) {
  return createApiToken(platform, actorOf(caller), { email: caller.user.email, ...input });
}

export async function revokeOwnToken(
  platform: Platform,
  caller: Caller,
  tokenId: string,
): Promise<void> {
  const revoked = await usersRepository(platform.catalog.db).revokeToken(
    caller.user.id,
    tokenId,
    new Date(),
  );
  if (!revoked) throw new AppError('token_not_found', 'Token not found');
  await platform.audit.record({
    action: 'token.revoke',
    actor: actorOf(caller),
    target: `token:${tokenId}`,
  });
}
