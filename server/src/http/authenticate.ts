import type { FastifyRequest } from 'fastify';
import { usersRepository, type User } from '../catalog/users-repository.ts';
import type { Caller } from '../caller.ts';
import { AppError } from '../errors.ts';
import type { Platform } from '../platform.ts';

/** Who each request turned out to be, for the audit entry of a refusal later in it. */
const signedIn = new WeakMap<FastifyRequest, User>();

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
  signedIn.set(request, user);
  return user;
}

/** The signed-in user and the client's address, for use-cases that audit what they do. */
export async function requireCaller(platform: Platform, request: FastifyRequest): Promise<Caller> {
  return { user: await requireUser(platform, request), source: request.ip };
}

/** The user the request was signed in as, if it got that far. */
export function signedInUser(request: FastifyRequest): User | undefined {
  return signedIn.get(request);
}
