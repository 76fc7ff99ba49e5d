import type { IdentityScope, PseudonymEntry, Reidentification, Vault } from './vault.ts';

/**
 * What ingest and the custodian need from the vault, wherever it runs: in process (the
 * embedded default) or as `medlake vault serve` on a host of its own. The calls are
 * asynchronous because the second is across the network; the embedded one answers at once.
 */
export type VaultClient = {
  /** Where the vault is, for messages: "the vault in DIR" or "the vault service at URL". */
  readonly description: string;
  /** The secret for linkage columns, derived from the vault key (never the key itself). */
  linkageKey(): Promise<string>;
  /** The pseudonym and date shift of every id, creating those not seen before in this scope. */
  pseudonymize(
    scope: IdentityScope,
    realIds: readonly string[],
  ): Promise<Map<string, PseudonymEntry>>;
  /** Maps a pseudonym back; the vault records who asked and why in its own log. */
  reidentify(
    pseudonym: string,
    request: { custodian: string; reason: string; source?: string },
  ): Promise<Reidentification>;
  /** The patient pseudonym for which `matches` holds, trying each in turn. */
  findPatientPseudonym(matches: (pseudonym: string) => boolean): Promise<string | undefined>;
  close(): Promise<void>;
};

/** The embedded vault behind the client interface; its errors become rejections. */
export function embeddedVaultClient(vault: Vault, directory: string): VaultClient {
  return {
    description: `the vault in ${directory}`,
    linkageKey: async () => vault.linkageKey,
    pseudonymize: async (scope, realIds) => vault.pseudonymize(scope, realIds),
    reidentify: async (pseudonym, request) => vault.reidentify(pseudonym, request),
    findPatientPseudonym: async (matches) => vault.findPatientPseudonym(matches),
    close: async () => vault.close(),
  };
}
