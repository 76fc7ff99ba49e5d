import { randomBytes, randomUUID } from 'node:crypto';
import type { CatalogDb } from './catalog.ts';
import { hashToken, toUser, type User } from './users-repository.ts';

export type Session = {
  id: string;
  userId: string;
  csrfToken: string;
  method: 'password' | 'oidc';
  createdAt: Date;
  expiresAt: Date;
};

/** Browser sessions. The cookie carries a random token; the catalog keeps its SHA-256. */
export function sessionsRepository(db: CatalogDb) {
  return {
    async create(input: {
      userId: string;
      method: Session['method'];
      source: string;
      userAgent: string | undefined;
      now: Date;
      expiresAt: Date;
    }): Promise<{ token: string; session: Session }> {
      const token = randomBytes(32).toString('base64url');
      const row = await db
        .insertInto('sessions')
        .values({
          id: randomUUID(),
          user_id: input.userId,
          token_sha256: hashToken(token),
          csrf_token: randomBytes(24).toString('base64url'),
          method: input.method,
          source: input.source,
          user_agent: input.userAgent?.slice(0, 300) ?? null,
          last_seen_at: input.now,
          expires_at: input.expiresAt,
        })
        .returningAll()
        .executeTakeFirstOrThrow();
      return {
        token,
        session: {
          id: row.id,
          userId: row.user_id,
          csrfToken: row.csrf_token,
          method: row.method,
          createdAt: row.created_at,
          expiresAt: row.expires_at,
        },
      };
    },

    /**
     * The session and its active user for a cookie's token: none when it is unknown, revoked,
     * past its absolute expiry, idle since before `idleSince`, or its user is disabled.
     */
    async byToken(
      token: string,
      now: Date,
      idleSince: Date,
    ): Promise<{ session: Session; user: User } | undefined> {
      const row = await db
        .selectFrom('sessions as s')
        .innerJoin('users as u', 'u.id', 's.user_id')
        .selectAll('u')
        .select([
          's.id as session_id',
          's.csrf_token',
          's.method',
          's.created_at as session_created_at',
          's.expires_at',
          's.last_seen_at',
        ])
        .where('s.token_sha256', '=', hashToken(token))
        .where('s.revoked_at', 'is', null)
        .where('s.expires_at', '>', now)
        .where('s.last_seen_at', '>', idleSince)
        .where('u.disabled_at', 'is', null)
        .executeTakeFirst();
      if (!row) return undefined;
      // Kept to the minute: a write on every request would slow every request down.
      if (now.getTime() - row.last_seen_at.getTime() > 60_000) {
        await db
          .updateTable('sessions')
          .set({ last_seen_at: now })
          .where('id', '=', row.session_id)
          .execute();
      }
      return {
        user: toUser(row),
        session: {
          id: row.session_id,
          userId: row.id,
          csrfToken: row.csrf_token,
          method: row.method,
          createdAt: row.session_created_at,
          expiresAt: row.expires_at,
        },
      };
    },

    async revoke(id: string, now: Date): Promise<void> {
      await db
        .updateTable('sessions')
        .set({ revoked_at: now })
        .where('id', '=', id)
        .where('revoked_at', 'is', null)
        .execute();
    },

    /** Ends every session of the user (password change or reset, disabling the account). */
    async revokeAllOf(userId: string, now: Date): Promise<number> {
      const result = await db
        .updateTable('sessions')
        .set({ revoked_at: now })
        .where('user_id', '=', userId)
        .where('revoked_at', 'is', null)
        .executeTakeFirst();
      return Number(result.numUpdatedRows);
    },
  };
}
