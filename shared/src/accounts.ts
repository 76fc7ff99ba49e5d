import { z } from 'zod';
import { pageOf } from './paging.ts';

/**
 * What a personal API token may be used for; a browser session may do all its user may. A
 * token for a script that only queries cannot upload, read the audit log or change accounts.
 */
export const tokenScopes = ['query', 'upload', 'audit', 'admin'] as const;
export const tokenScopeSchema = z.enum(tokenScopes);
export type TokenScope = z.infer<typeof tokenScopeSchema>;

export const userRoleSchema = z.enum(['admin', 'steward', 'researcher', 'auditor', 'custodian']);

/** A user as the API shows them: never a hash, a secret or a failed-login count. */
export const userViewSchema = z.object({
  id: z.string(),
  email: z.string(),
  name: z.string(),
  role: userRoleSchema,
  totpEnabled: z.boolean(),
  disabled: z.boolean(),
});

/**
 * What must happen before a session may do anything else: replace a one-time password, or set
 * up the authenticator app that admins are required to use.
 */
export const sessionNeedSchema = z.enum(['password_change', 'totp_setup']);

export const sessionViewSchema = z.object({
  user: userViewSchema,
  /** Send it back in the x-csrf-token header with every write made with the session cookie. */
  csrfToken: z.string().nullable(),
  needs: z.array(sessionNeedSchema),
  expiresAt: z.string().nullable(),
  method: z.enum(['password', 'oidc', 'token']),
});

export const signInSchema = z.object({
  email: z.string().min(1).max(320),
  password: z.string().min(1).max(1024),
  code: z
    .string()
    .regex(/^\d{6}$/, 'six digits')
    .optional(),
});

export type UserView = z.infer<typeof userViewSchema>;
export const userPageSchema = pageOf('users', userViewSchema);
export type SessionView = z.infer<typeof sessionViewSchema>;
export type SessionNeed = z.infer<typeof sessionNeedSchema>;

export const apiTokenViewSchema = z.object({
  id: z.string(),
  name: z.string(),
  scopes: z.array(tokenScopeSchema),
  createdAt: z.string(),
  expiresAt: z.string(),
  lastUsedAt: z.string().nullable(),
});

export const newApiTokenSchema = z.object({
  name: z.string().min(1).max(100),
  days: z.number().int().min(1).max(366).default(30),
  /** Default: every scope the user's role can use. */
  scopes: z.array(tokenScopeSchema).min(1).optional(),
});

export type ApiTokenView = z.infer<typeof apiTokenViewSchema>;

/** How one can sign in: password, and single sign-on when configured. */
export const authMethodsSchema = z.object({
  password: z.boolean(),
  sso: z.object({ loginUrl: z.string() }).nullable(),
});

/** A new user, with the one-time password an admin hands over (shown once). */
export const newUserResultSchema = z.object({ user: userViewSchema, oneTimePassword: z.string() });

export const passwordResetSchema = z.object({ oneTimePassword: z.string() });

/** An authenticator app's secret to scan, confirmed with a code next. */
export const totpSetupSchema = z.object({ secret: z.string(), uri: z.string() });

export const apiTokenListSchema = z.object({ tokens: z.array(apiTokenViewSchema) });

/** A personal API token just made: the token itself is in this answer only. */
export const madeApiTokenSchema = z.object({
  id: z.string(),
  token: z.string(),
  scopes: apiTokenViewSchema.shape.scopes,
  expiresAt: z.string(),
});
