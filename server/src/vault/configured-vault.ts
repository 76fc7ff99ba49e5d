import { readFile } from 'node:fs/promises';
import path from 'node:path';
import type { Env } from '../env.ts';
import { homeLayout } from '../home-layout.ts';
import { remoteVaultClient } from './remote-vault.ts';
import { embeddedVaultClient, type VaultClient } from './vault-client.ts';
import { resolveVaultKey } from './vault-key.ts';
import { openVault, vaultExists, type Vault } from './vault.ts';

/**
 * Opens the embedded vault the configuration names, with its key: on the vault host
 * (`medlake vault serve`), for backups, and behind `openConfiguredVaultClient` when no vault
 * service is configured.
 */
export async function openConfiguredVault(env: Env): Promise<Vault> {
  const key = await resolveVaultKey({
    configuredKey: env.MEDLAKE_VAULT_KEY,
    generatedKeyFile: path.join(homeLayout(env.MEDLAKE_HOME).keys, 'vault.key'),
    vaultExists: vaultExists(env.MEDLAKE_VAULT_DIR),
  });
  return openVault(env.MEDLAKE_VAULT_DIR, key);
}

/**
 * The vault as ingest and the custodian reach it: the vault service when MEDLAKE_VAULT_URL is
 * set (then nothing of the vault is opened, made or kept on this host), else the embedded one.
 */
export async function openConfiguredVaultClient(env: Env): Promise<VaultClient> {
  if (!env.MEDLAKE_VAULT_URL) {
    return embeddedVaultClient(await openConfiguredVault(env), env.MEDLAKE_VAULT_DIR);
  }
  const read = (file: string | undefined) => readFile(path.resolve(file ?? ''), 'utf8');
  return remoteVaultClient({
    url: env.MEDLAKE_VAULT_URL,
    ca: await read(env.MEDLAKE_VAULT_CA_PATH),
    cert: await read(env.MEDLAKE_VAULT_CLIENT_CERT_PATH),
    key: await read(env.MEDLAKE_VAULT_CLIENT_KEY_PATH),
  });
}
