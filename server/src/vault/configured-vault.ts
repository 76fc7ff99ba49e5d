import path from 'node:path';
import type { Env } from '../env.ts';
import { homeLayout } from '../home-layout.ts';
import { resolveVaultKey } from './vault-key.ts';
import { openVault, vaultExists, type Vault } from './vault.ts';

/** Opens the vault the configuration names, with its key. Only ingest and the custodian call this. */
export async function openConfiguredVault(env: Env): Promise<Vault> {
  const key = await resolveVaultKey({
    configuredKey: env.MEDLAKE_VAULT_KEY,
    generatedKeyFile: path.join(homeLayout(env.MEDLAKE_HOME).keys, 'vault.key'),
    vaultExists: vaultExists(env.MEDLAKE_VAULT_DIR),
  });
  return openVault(env.MEDLAKE_VAULT_DIR, key);
}
