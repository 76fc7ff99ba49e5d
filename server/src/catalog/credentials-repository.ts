import type { CatalogDb } from './catalog.ts';

/** What signing in with a password checks, kept apart from the User everyone else sees. */
export type Credentials = {
  userId: string;
  passwordHash: string | null;
  failedLogins: number;
  lockedUntil: Date | null;
  /** Encrypted; see accounts/totp.ts. */
  totpSecret: string | null;
  totpEnabled: boolean;
  totpLastStep: number | null;
};

/** Password hashes, failed-login counts and TOTP secrets of the users. */
export function credentialsRepository(db: CatalogDb) {
  return {
    async get(userId: string): Promise<Credentials | undefined> {
      const row = await db
        .selectFrom('users')
        .select([
          'id',
          'password_hash',
          'failed_logins',
          'locked_until',
          'totp_secret',
          'totp_enabled_at',
          'totp_last_step',
        ])
        .where('id', '=', userId)
        .executeTakeFirst();
      return (
        row && {
          userId: row.id,
          passwordHash: row.password_hash,
          failedLogins: row.failed_logins,
          lockedUntil: row.locked_until,
          totpSecret: row.totp_secret,
          totpEnabled: row.totp_enabled_at !== null,
          totpLastStep: row.totp_last_step === null ? null : Number(row.totp_last_step),
        }
      );
    },

    /**
     * Counts a failed sign-in; at `lockAfter` failures in a row the account is locked until
     * `lockUntil`. Tells the count and whether this failure locked it.
     */
    async recordFailure(
      userId: string,
      lockAfter: number,
      lockUntil: Date,
    ): Promise<{ failedLogins: number; locked: boolean }> {
      const row = await db
        .updateTable('users')
        .set((eb) => ({ failed_logins: eb('failed_logins', '+', 1) }))
        .where('id', '=', userId)
        .returning('failed_logins')
        .executeTakeFirstOrThrow();
      const locked = row.failed_logins >= lockAfter;
      if (locked) {
        await db
          .updateTable('users')
          .set({ locked_until: lockUntil, failed_logins: 0 })
          .where('id', '=', userId)
          .execute();
      }
      return { failedLogins: row.failed_logins, locked };
    },

    async recordSuccess(userId: string, now: Date, totpStep?: number): Promise<void> {
      await db
        .updateTable('users')
        .set({
          failed_logins: 0,
          locked_until: null,
          last_login_at: now,
          ...(totpStep === undefined ? {} : { totp_last_step: totpStep }),
        })
        .where('id', '=', userId)
        .execute();
    },

    async setPassword(userId: string, hash: string, mustChange: boolean, now: Date) {
      await db
        .updateTable('users')
        .set({
          password_hash: hash,
          password_changed_at: now,
          must_change_password: mustChange,
          failed_logins: 0,
          locked_until: null,
        })
        .where('id', '=', userId)
        .execute();
    },

    /** Stores a new, not yet confirmed secret; the old one (if any) stays in force until then. */
    async setPendingTotp(userId: string, encryptedSecret: string): Promise<void> {
      await db
        .updateTable('users')
        .set({ totp_secret: encryptedSecret, totp_enabled_at: null, totp_last_step: null })
        .where('id', '=', userId)
        .execute();
    },

    async clearTotp(userId: string): Promise<void> {
      await db
        .updateTable('users')
        .set({ totp_secret: null, totp_enabled_at: null, totp_last_step: null })
        .where('id', '=', userId)
        .execute();
    },

    async enableTotp(userId: string, now: Date, step: number): Promise<void> {
      await db
        .updateTable('users')
        .set({ totp_enabled_at: now, totp_last_step: step })
        .where('id', '=', userId)
        .execute();
    },
  };
}
