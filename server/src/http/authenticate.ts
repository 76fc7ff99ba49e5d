import type { FastifyRequest } from 'fastify';
import { usersRepository, type User } from '../catalog/users-repository.ts';
import { AppError } from '../errors.ts';
import type { Platform } from '../platform.ts';

/**
 * The user a request speaks for, from its `Authorization: Bearer <token>` header (a personal
 * API token). Browser sessions join here with the accounts issue. No user, no data: every
 * route that touches data calls this first.
 */
export async function requireUser(platform: Platform, request: FastifyRequest): Promise<User> {
  const header = request.headers.authorization;
  const match = header ? /^Bearer\s+(\S+)$/i.exec(header) : null;
  const user = match?.[1]
    ? await usersRepository(platform.catalog.db).byToken(match[1], new Date())
    : undefined;
  if (!user) {
    throw new AppError(
      'UNAUTHENTICATED',
      header
        ? 'The API token is unknown, expired or revoked'
        : 'Sign in first: send a personal API token as "Authorization: Bearer <token>"',
    );
  }
  return user;
}
