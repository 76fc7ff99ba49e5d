import { createHash, createHmac } from 'node:crypto';

export type HolderPseudonyms = {
  /** The key a holder's pseudonyms are made with, as the SQL dialects take it (hex). */
  keyFor(holder: string): string;
  /** The pseudonym a holder sees for a platform pseudonym, as the engines compute it. */
  pseudonymFor(holder: string, platformPseudonym: string): string;
};

/**
 * Pseudonyms per holder (a project, or a user with a grant of their own): row-level results
 * and exports show SHA-256(holder key ‖ platform pseudonym), cut to 80 bits, where each
 * holder's key is an HMAC of the holder under the server's secret. Two projects' exports share
 * no pseudonym, so they cannot be linked; the custodian, who can derive any holder's key, maps
 * one back by hashing the vault's pseudonyms (`medlake vault reidentify --holder`).
 */
export function holderPseudonyms(secret: Buffer): HolderPseudonyms {
  const keyFor = (holder: string) =>
    createHmac('sha256', secret).update(`medlake holder pseudonyms\n${holder}`).digest('hex');
  return {
    keyFor,
    pseudonymFor(holder, platformPseudonym) {
      return createHash('sha256')
        .update(`${keyFor(holder)}${platformPseudonym}`)
        .digest('hex')
        .slice(0, 20);
    },
  };
}
