import { createCipheriv, createDecipheriv, hkdfSync, randomBytes } from 'node:crypto';
import { Secret, TOTP } from 'otpauth';

/** RFC 6238 as every authenticator app reads it: SHA-1, six digits, 30-second steps. */
const periodSeconds = 30;

function totpFor(secretBase32: string, label: string): TOTP {
  return new TOTP({
    issuer: 'medlake',
    label,
    algorithm: 'SHA1',
    digits: 6,
    period: periodSeconds,
    secret: Secret.fromBase32(secretBase32),
  });
}

/** A fresh 160-bit secret, as base32 for the authenticator app. */
export function newTotpSecret(): string {
  return new Secret({ size: 20 }).base32;
}

/** The otpauth:// URI an authenticator app reads (as a QR code or pasted). */
export function totpUri(secretBase32: string, email: string): string {
  return totpFor(secretBase32, email).toString();
}

/**
 * The time step a code belongs to, if it is valid now (one step of clock drift either way),
 * and newer than the last accepted step: a code works once.
 */
export function acceptedTotpStep(
  secretBase32: string,
  code: string,
  now: Date,
  lastStep: number | null,
): number | null {
  if (!/^\d{6}$/.test(code)) return null;
  const delta = totpFor(secretBase32, 'check').validate({
    token: code,
    timestamp: now.getTime(),
    window: 1,
  });
  if (delta === null) return null;
  const step = Math.floor(now.getTime() / 1000 / periodSeconds) + delta;
  return lastStep !== null && step <= lastStep ? null : step;
}

/** The current code, for tests and for `medlake users` diagnostics. */
export function currentTotpCode(secretBase32: string, now = new Date()): string {
  return totpFor(secretBase32, 'now').generate({ timestamp: now.getTime() });
}

/**
 * TOTP secrets are kept encrypted (AES-256-GCM) under a key outside the catalog: a copy of
 * the database alone does not let anyone make codes.
 */
export function totpSecretBox(key: Buffer) {
  const aesKey = Buffer.from(hkdfSync('sha256', key, Buffer.alloc(0), 'medlake totp secrets', 32));
  return {
    seal(secretBase32: string): string {
      const iv = randomBytes(12);
      const cipher = createCipheriv('aes-256-gcm', aesKey, iv);
      const sealed = Buffer.concat([cipher.update(secretBase32, 'utf8'), cipher.final()]);
      return `v1:${Buffer.concat([iv, cipher.getAuthTag(), sealed]).toString('base64')}`;
    },
    open(stored: string): string {
      const raw = Buffer.from(stored.replace(/^v1:/, ''), 'base64');
      const decipher = createDecipheriv('aes-256-gcm', aesKey, raw.subarray(0, 12));
      decipher.setAuthTag(raw.subarray(12, 28));
      return Buffer.concat([decipher.update(raw.subarray(28)), decipher.final()]).toString('utf8');
    },
  };
}

export type TotpSecretBox = ReturnType<typeof totpSecretBox>;
