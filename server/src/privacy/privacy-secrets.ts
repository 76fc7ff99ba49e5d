import { createHash, createHmac } from 'node:crypto';
import { seededBytes } from './discrete-laplace.ts';

export type PrivacySecrets = {
  /** The key a holder's pseudonyms are made with, as the SQL dialects take it (hex). */
  pseudonymKeyFor(holder: string): string;
  /** The pseudonym a holder sees for a platform pseudonym, as the engines compute it. */
  pseudonymFor(holder: string, platformPseudonym: string): string;
  /**
   * The days a holder's row-level results move a patient's shifted event dates, on top of the
   * shift the lake holds (from 1 to 182 either way, never 0), as the engines compute it.
   */
  dateShiftFor(holder: string, platformPseudonym: string): number;
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
 *
 * Date shifts per holder: where the lake's event dates are shifted per patient (`datePolicy:
 * shift`), a holder's row-level results move them again by a shift of the holder's own per
 * patient, drawn from SHA-256(date key ‖ platform pseudonym), the date key derived from the
 * holder's key. The same patient's dates move together (intervals are kept), but a patient's
 * dates differ between two projects by an amount that differs from patient to patient.
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
    dateShiftFor(holder, platformPseudonym) {
      const hash = createHash('sha256')
        .update(`${dateShiftKeyOf(pseudonymKeyFor(holder))}${platformPseudonym}`)
        .digest('hex');
      const m = Number.parseInt(hash.slice(0, 8), 16) % (2 * holderShiftDays);
      return ((m + holderShiftDays + 1) % (2 * holderShiftDays + 1)) - holderShiftDays;
    },
    noiseBytes(label) {
      return seededBytes(derive(`medlake noise\n${label}`));
    },
  };
}

/** The largest number of days a holder's own shift moves a patient's dates, either way. */
export const holderShiftDays = 182;

/** The key of a holder's date shifts, derived from the holder's pseudonym key (hex). */
export function dateShiftKeyOf(holderKey: string): string {
  return createHmac('sha256', holderKey).update('medlake holder date shifts').digest('hex');
}
