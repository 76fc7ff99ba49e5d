import * as oidc from 'openid-client';
import { parseRoleMap, type Env } from '../env.ts';
import type { UserRole } from '../catalog/schema.ts';

export type OidcSettings = {
  issuer: URL;
  clientId: string;
  clientSecret: string | undefined;
  redirectUrl: URL;
  roleClaim: string;
  roleMap: Array<{ value: string; role: UserRole }>;
  createAccounts: boolean;
};

/** The single sign-on settings, or null when no OpenID provider is configured. */
export function oidcSettings(env: Env): OidcSettings | null {
  if (!env.MEDLAKE_OIDC_ISSUER || !env.MEDLAKE_OIDC_CLIENT_ID || !env.MEDLAKE_OIDC_REDIRECT_URL) {
    return null;
  }
  return {
    issuer: new URL(env.MEDLAKE_OIDC_ISSUER),
    clientId: env.MEDLAKE_OIDC_CLIENT_ID,
    clientSecret: env.MEDLAKE_OIDC_CLIENT_SECRET,
    redirectUrl: new URL(env.MEDLAKE_OIDC_REDIRECT_URL),
    roleClaim: env.MEDLAKE_OIDC_ROLE_CLAIM,
    roleMap: parseRoleMap(env.MEDLAKE_OIDC_ROLE_MAP) as OidcSettings['roleMap'],
    createAccounts: env.MEDLAKE_OIDC_CREATE_ACCOUNTS === 'true',
  };
}

const configurations = new Map<string, Promise<oidc.Configuration>>();

/**
 * The provider's configuration, discovered once per process (a failed discovery is tried
 * again next time). Plain http is accepted only for a provider on this machine, as in tests
 * and development; anywhere else the provider must speak https.
 */
export function providerConfiguration(settings: OidcSettings): Promise<oidc.Configuration> {
  const key = `${settings.issuer.href} ${settings.clientId}`;
  let found = configurations.get(key);
  if (!found) {
    const local = ['localhost', '127.0.0.1', '[::1]'].includes(settings.issuer.hostname);
    found = oidc.discovery(
      settings.issuer,
      settings.clientId,
      settings.clientSecret,
      undefined,
      local && settings.issuer.protocol === 'http:'
        ? { execute: [oidc.allowInsecureRequests] }
        : {},
    );
    found.catch(() => configurations.delete(key));
    configurations.set(key, found);
  }
  return found;
}

/** The medlake role the provider's claims map to, if any: the first rule that matches. */
export function mappedRole(
  settings: OidcSettings,
  claims: Record<string, unknown>,
): UserRole | null {
  const raw = claims[settings.roleClaim];
  const values = new Set((Array.isArray(raw) ? raw : [raw]).filter((v) => typeof v === 'string'));
  return settings.roleMap.find((rule) => values.has(rule.value))?.role ?? null;
}

export { oidc };
