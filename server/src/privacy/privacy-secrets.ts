import { createHash, createHmac } from 'node:crypto';
import { seededBytes } from './discrete-laplace.ts';

export type PrivacySecrets = {
  /** The key a holder's pseudonyms are made with, as the SQL dialects take it (hex). */
  pseudonymKeyFor(holder: string): string;
  /** The pseudonym a holder sees for a platform pseudonym, as the engines compute it. */
  pseudonymFor(holder: string, platformPseudonym: string): string;
  /**
   * Random bytes for the noise of one answer, the same every time for the same label (holder,
   * query and releases): asking again gives the same noisy answer, so averaging repeated
   * answers learns nothing. Unpredictable without the secret.
   */
  noiseBytes(label: string): (bytes: number) => Buffer;
};

/**
 * The secrets of the privacy controls, all derived from one key (MEDLAKE_PRIVACY_SECRET, or a
 * key file of the embedded default), each under its own label.
 *
 * Pseudonyms per holder (a project, or a user with a grant of their own): row-level results
 * and exports show SHA-256(holder key ‖ platform pseudonym), cut to 80 bits and written like the
 * platform's own (p_ and 20 hex digits), the holder's key
 * being an HMAC of the holder. Two projects' exports share no pseudonym, so they cannot be
 * linked; the custodian, who can derive any holder's key, maps one back by hashing the vault's
 * pseudonyms (`medlake vault reidentify --holder`).
 */
export function privacySecrets(secret: Buffer): PrivacySecrets {
  const derive = (label: string) => createHmac('sha256', secret).update(label).digest('hex');
  const pseudonymKeyFor = (holder: string) => derive(`medlake holder pseudonyms\n${holder}`);
  return {
    pseudonymKeyFor,
    pseudonymFor(holder, platformPseudonym) {
      const hash = createHash('sha256')
        .update(`${pseudonymKeyFor(holder)}${platformPseudonym}`)
        .digest('hex');
      return `p_${hash.slice(0, 20)}`;
    },
    noiseBytes(label) {
      return seededBytes(derive(`medlake noise\n${label}`));
    },
  };
}
