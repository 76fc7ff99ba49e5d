import { createHash, randomBytes, randomUUID } from 'node:crypto';
import type { CatalogDb } from './catalog.ts';
import { paged } from './paged.ts';
import { escapeLike } from './escape-like.ts';
import type { TokenScope } from '@medlake/shared';
import type { UserRole } from './schema.ts';

export type User = {
  id: string;
  email: string;
  name: string;
  role: UserRole;
  createdAt: Date;
  disabledAt: Date | null;
  /** Set by an admin's password reset: nothing but choosing a new password until done. */
  mustChangePassword: boolean;
  totpEnabled: boolean;
};

export type ApiToken = {
  id: string;
  name: string;
  scopes: TokenScope[];
  createdAt: Date;
  expiresAt: Date;
  lastUsedAt: Date | null;
};

/** What a token is shown as: a prefix that says what it is, then 256 random bits. */
const tokenPrefix = 'mlk_';

export function hashToken(token: string): string {
  return createHash('sha256').update(token).digest('hex');
}

/** A user as the catalog row has it, without the credentials. */
export function toUser(row: {
  id: string;
  email: string;
  name: string;
  role: UserRole;
  created_at: Date;
  disabled_at: Date | null;
  must_change_password: boolean;
  totp_enabled_at: Date | null;
}): User {
  return {
    id: row.id,
    email: row.email,
    name: row.name,
    role: row.role,
    createdAt: row.created_at,
    disabledAt: row.disabled_at,
    mustChangePassword: row.must_change_password,
    totpEnabled: row.totp_enabled_at !== null,
  };
}

/** A token that is not revoked, of a user who is not disabled: tokenHolder. */
export type TokenHolder = {
  user: User;
  scopes: TokenScope[];
  tokenId: string;
  expiresAt: Date;
  lastUsedAt: Date | null;
};

/**
 * The token's user and scopes if it has not expired at `now`, its use recorded: to the minute,
 * since a write on every request would slow every request down.
 */
export async function usedAt(
  users: Pick<ReturnType<typeof usersRepository>, 'touchToken'>,
  holder: TokenHolder | undefined,
  now: Date,
): Promise<{ user: User; scopes: TokenScope[] } | undefined> {
  if (!holder || holder.expiresAt.getTime() <= now.getTime()) return undefined;
  if (!holder.lastUsedAt || now.getTime() - holder.lastUsedAt.getTime() > 60_000) {
    await users.touchToken(holder.tokenId, now);
  }
  return { user: holder.user, scopes: holder.scopes };
}

/** Whether a token is shaped as medlake makes them (so not worth a look in the catalog). */
export function looksLikeToken(token: string): boolean {
  return token.startsWith(tokenPrefix);
}

/** People who use medlake, and their personal API tokens. */
export function usersRepository(db: CatalogDb) {
  /**
   * The token with this hash if it is not revoked and its user is not disabled, whenever it
   * expires (its expiry comes with it, for the caller to check against the clock at each use).
   */
  const tokenHolder = async (tokenSha256: string): Promise<TokenHolder | undefined> => {
    const row = await db
      .selectFrom('api_tokens as t')
      .innerJoin('users as u', 'u.id', 't.user_id')
      .selectAll('u')
      .select(['t.id as token_id', 't.last_used_at', 't.scopes', 't.expires_at'])
      .where('t.token_sha256', '=', tokenSha256)
      .where('t.revoked_at', 'is', null)
      .where('u.disabled_at', 'is', null)
      .executeTakeFirst();
    if (!row) return undefined;
    return {
      user: toUser(row),
      scopes: row.scopes as TokenScope[],
      tokenId: row.token_id,
      expiresAt: row.expires_at,
      lastUsedAt: row.last_used_at,
    };
  };

  /** Records that the token was used now. */
  const touchToken = async (tokenId: string, now: Date): Promise<void> => {
    await db
      .updateTable('api_tokens')
      .set({ last_used_at: now })
      .where('id', '=', tokenId)
      .execute();
  };

  return {
    async create(user: { email: string; name: string; role: UserRole }): Promise<User> {
      const row = await db
        .insertInto('users')
        .values({
          id: randomUUID(),
          email: user.email.toLowerCase(),
          name: user.name,
          role: user.role,
        })
        .returningAll()
        .executeTakeFirstOrThrow();
      return toUser(row);
    },

    async byEmail(email: string): Promise<User | undefined> {
      const row = await db
        .selectFrom('users')
        .selectAll()
        .where('email', '=', email.toLowerCase())
        .executeTakeFirst();
      return row && toUser(row);
    },

    async byId(id: string): Promise<User | undefined> {
      const row = await db.selectFrom('users').selectAll().where('id', '=', id).executeTakeFirst();
      return row && toUser(row);
    },

    async bySubject(subject: string): Promise<User | undefined> {
      const row = await db
        .selectFrom('users')
        .selectAll()
        .where('oidc_subject', '=', subject)
        .executeTakeFirst();
      return row && toUser(row);
    },

    /** Ties the account to its identity at the OpenID provider. */
    async linkSubject(id: string, subject: string): Promise<void> {
      await db.updateTable('users').set({ oidc_subject: subject }).where('id', '=', id).execute();
    },

    async setDisabled(id: string, at: Date | null): Promise<void> {
      await db.updateTable('users').set({ disabled_at: at }).where('id', '=', id).execute();
    },

    async setRole(id: string, role: UserRole): Promise<void> {
      await db.updateTable('users').set({ role }).where('id', '=', id).execute();
    },

    async activeAdmins(): Promise<number> {
      const row = await db
        .selectFrom('users')
        .select((eb) => eb.fn.countAll<string>().as('n'))
        .where('role', '=', 'admin')
        .where('disabled_at', 'is', null)
        .executeTakeFirstOrThrow();
      return Number(row.n);
    },

    /** A page of users by e-mail: of a role, whose e-mail or name contains `search`, if given. */
    async page(
      page: { limit: number; offset: number },
      filter: { search?: string; role?: UserRole } = {},
    ): Promise<{ users: User[]; total: number }> {
      const { search, role } = filter;
      let query = db.selectFrom('users');
      if (role) query = query.where('role', '=', role);
      if (search) {
        const pattern = `%${escapeLike(search)}%`;
        query = query.where((eb) =>
          eb.or([eb('email', 'ilike', pattern), eb('name', 'ilike', pattern)]),
        );
      }
      const { rows, total } = await paged(query, (q) => q.selectAll().orderBy('email'), page);
      return { users: rows.map(toUser), total };
    },

    /** The e-mails of the users with these ids. */
    async emailsOf(ids: string[]): Promise<Map<string, string>> {
      if (ids.length === 0) return new Map();
      const rows = await db
        .selectFrom('users')
        .select(['id', 'email'])
        .where('id', 'in', ids)
        .execute();
      return new Map(rows.map((row) => [row.id, row.email]));
    },

    async list(): Promise<User[]> {
      const rows = await db.selectFrom('users').selectAll().orderBy('email').execute();
      return rows.map(toUser);
    },

    /** Makes a token; the token itself is returned once and only its hash is kept. */
    async createToken(
      userId: string,
      options: { name: string; expiresAt: Date; scopes: readonly TokenScope[] },
    ): Promise<{ id: string; token: string; expiresAt: Date }> {
      const token = `${tokenPrefix}${randomBytes(32).toString('base64url')}`;
      const id = randomUUID();
      await db
        .insertInto('api_tokens')
        .values({
          id,
          user_id: userId,
          token_sha256: hashToken(token),
          name: options.name,
          expires_at: options.expiresAt,
          scopes: JSON.stringify(options.scopes),
        })
        .execute();
      return { id, token, expiresAt: options.expiresAt };
    },

    /** A user's tokens that have not been revoked, newest first: never the tokens themselves. */
    async tokensOf(userId: string): Promise<ApiToken[]> {
      const rows = await db
        .selectFrom('api_tokens')
        .select(['id', 'name', 'scopes', 'created_at', 'expires_at', 'last_used_at'])
        .where('user_id', '=', userId)
        .where('revoked_at', 'is', null)
        .orderBy('created_at', 'desc')
        .execute();
      return rows.map((row) => ({
        id: row.id,
        name: row.name,
        scopes: row.scopes as TokenScope[],
        createdAt: row.created_at,
        expiresAt: row.expires_at,
        lastUsedAt: row.last_used_at,
      }));
    },

    /** Revokes one of the user's tokens; false when they have no such token. */
    async revokeToken(userId: string, tokenId: string, now: Date): Promise<boolean> {
      const result = await db
        .updateTable('api_tokens')
        .set({ revoked_at: now })
        .where('id', '=', tokenId)
        .where('user_id', '=', userId)
        .where('revoked_at', 'is', null)
        .executeTakeFirst();
      return Number(result.numUpdatedRows) === 1;
    },

    /** The active user a token belongs to, and its scopes; none for an unknown, expired or revoked token. */
    async byToken(
      token: string,
      now: Date,
    ): Promise<{ user: User; scopes: TokenScope[] } | undefined> {
      if (!token.startsWith(tokenPrefix)) return undefined;
      return usedAt({ touchToken }, await tokenHolder(hashToken(token)), now);
    },

    tokenHolder,
    touchToken,
  };
}
