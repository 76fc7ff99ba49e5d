import { hash, verify } from '@node-rs/argon2';
import { ZxcvbnFactory } from '@zxcvbn-ts/core';
import * as common from '@zxcvbn-ts/language-common';
import * as english from '@zxcvbn-ts/language-en';
import { randomBytes } from 'node:crypto';
import { AppError } from '../errors.ts';

const argon2id = 2;
export const minPasswordLength = 12;
const maxPasswordLength = 256;
/** zxcvbn's score from 0 to 4; 3 means "safely unguessable: moderate protection". */
const minPasswordScore = 3;

// Common passwords, keyboard patterns and English words and names, loaded once.
const strength = new ZxcvbnFactory({
  dictionary: { ...common.dictionary, ...english.dictionary },
  graphs: common.adjacencyGraphs,
  translations: english.translations,
});

/**
 * argon2id with the library's defaults (19 MiB, 2 passes, 1 lane): OWASP's recommended
 * minimum, about 15 ms here. The PHC string keeps the parameters, so raising them later
 * leaves old hashes readable.
 */
export function hashPassword(password: string): Promise<string> {
  // 2 is Algorithm.Argon2id, a const enum that type stripping cannot read.
  return hash(password, { algorithm: argon2id });
}

export async function passwordMatches(stored: string | null, password: string): Promise<boolean> {
  // Without a stored hash a dummy one is checked anyway, so that an unknown e-mail takes as
  // long to refuse as a wrong password.
  return verify(stored ?? (await dummyHash), password).catch(() => false);
}

const dummyHash = hashPassword(randomBytes(16).toString('hex'));

/**
 * The password policy: 12 to 256 characters, and not guessable: not a common password, a
 * keyboard pattern, or built from the user's own e-mail or name. Throws naming the reason.
 */
export function assertPasswordAcceptable(
  password: string,
  user: { email: string; name: string },
  path = 'password',
): void {
  const refuse = (message: string) => {
    throw new AppError('password_rejected', `The password is not acceptable: ${message}`, [
      { path, message },
    ]);
  };
  if (password.length < minPasswordLength) {
    refuse(`use at least ${minPasswordLength} characters`);
  }
  if (password.length > maxPasswordLength) refuse(`use at most ${maxPasswordLength} characters`);
  const result = strength.check(password, [user.email, user.email.split('@')[0] ?? '', user.name]);
  if (result.score < minPasswordScore) {
    const why = result.feedback.warning ?? 'it is too easy to guess';
    refuse(`${why}${why.endsWith('.') ? '' : '.'} A few unrelated words make a strong one.`);
  }
}

/** A one-time password an admin hands over; the user must replace it at the first sign-in. */
export function oneTimePassword(): string {
  return randomBytes(15).toString('base64url');
}
