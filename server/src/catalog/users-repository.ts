import { createHash, randomBytes, randomUUID } from 'node:crypto';
import type { CatalogDb } from './catalog.ts';
import type { UserRole } from './schema.ts';

export type User = {
  id: string;
  email: string;
  name: string;
  role: UserRole;
  createdAt: Date;
  disabledAt: Date | null;
};

/** What a token is shown as: a prefix that says what it is, then 256 random bits. */
const tokenPrefix = 'mlk_';

export function hashToken(token: string): string {
  return createHash('sha256').update(token).digest('hex');
}

/** People who use medlake, and their personal API tokens. */
export function usersRepository(db: CatalogDb) {
  const toUser = (row: {
    id: string;
    email: string;
    name: string;
    role: UserRole;
    created_at: Date;
    disabled_at: Date | null;
  }): User => ({
    id: row.id,
    email: row.email,
    name: row.name,
    role: row.role,
    createdAt: row.created_at,
    disabledAt: row.disabled_at,
  });

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

    async list(): Promise<User[]> {
      const rows = await db.selectFrom('users').selectAll().orderBy('email').execute();
      return rows.map(toUser);
    },

    /** Makes a token; the token itself is returned once and only its hash is kept. */
    async createToken(
      userId: string,
      options: { name: string; expiresAt: Date },
    ): Promise<{ token: string; expiresAt: Date }> {
      const token = `${tokenPrefix}${randomBytes(32).toString('base64url')}`;
      await db
        .insertInto('api_tokens')
        .values({
          id: randomUUID(),
          user_id: userId,
          token_sha256: hashToken(token),
          name: options.name,
          expires_at: options.expiresAt,
        })
        .execute();
      return { token, expiresAt: options.expiresAt };
    },

    /** The active user a token belongs to; none for an unknown, expired or revoked token. */
    async byToken(token: string, now: Date): Promise<User | undefined> {
      if (!token.startsWith(tokenPrefix)) return undefined;
      const row = await db
        .selectFrom('api_tokens as t')
        .innerJoin('users as u', 'u.id', 't.user_id')
        .selectAll('u')
        .select(['t.id as token_id', 't.last_used_at'])
        .where('t.token_sha256', '=', hashToken(token))
        .where('t.revoked_at', 'is', null)
        .where('t.expires_at', '>', now)
        .where('u.disabled_at', 'is', null)
        .executeTakeFirst();
      if (!row) return undefined;
      // Recorded to the minute: a write on every request would slow every request down.
      if (!row.last_used_at || now.getTime() - row.last_used_at.getTime() > 60_000) {
        await db
          .updateTable('api_tokens')
          .set({ last_used_at: now })
          .where('id', '=', row.token_id)
          .execute();
      }
      return toUser(row);
    },
  };
}
