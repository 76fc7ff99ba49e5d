import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { AppError } from '../errors.ts';
import { createKeyFile } from '../key-file.ts';

export class VaultKeyError extends AppError {
  constructor(message: string) {
    super('vault_unavailable', message);
    this.name = 'VaultKeyError';
  }
}

/** Reads a 32-byte key written as 64 hex digits or as base64. */
export function parseVaultKey(text: string, where: string): Buffer {
  const trimmed = text.trim();
  const key = /^[0-9a-f]{64}$/i.test(trimmed)
    ? Buffer.from(trimmed, 'hex')
    : Buffer.from(trimmed, 'base64');
  if (key.length !== 32) {
    throw new VaultKeyError(`${where} must hold a 32-byte key, as 64 hex digits or base64`);
  }
  return key;
}

export type VaultKeySource = {
  /** MEDLAKE_VAULT_KEY (or the content of MEDLAKE_VAULT_KEY_FILE), when configured. */
  configuredKey: string | undefined;
  /** Where the embedded default keeps a generated key when none is configured. */
  generatedKeyFile: string;
  /** Whether a vault already exists: then a missing key is an error, never a new key. */
  vaultExists: boolean;
};

/**
 * The vault's key. A configured key wins. Without one, the embedded default generates a key
 * file outside the vault directory the first time a vault is created, and reads it after;
 * if a vault exists but its key is gone, that is an error: a new key would silently start a
 * second, unrelated set of pseudonyms.
 */
export async function resolveVaultKey(source: VaultKeySource): Promise<Buffer> {
  if (source.configuredKey !== undefined) {
    return parseVaultKey(source.configuredKey, 'MEDLAKE_VAULT_KEY');
  }
  if (existsSync(source.generatedKeyFile)) {
    return parseVaultKey(await readFile(source.generatedKeyFile, 'utf8'), source.generatedKeyFile);
  }
  if (source.vaultExists) {
    throw new VaultKeyError(
      `The vault exists but its key is missing: set MEDLAKE_VAULT_KEY (or MEDLAKE_VAULT_KEY_FILE), or restore ${source.generatedKeyFile}. ` +
        'A new key cannot read the existing pseudonym mapping.',
    );
  }
  return createKeyFile(source.generatedKeyFile);
}
