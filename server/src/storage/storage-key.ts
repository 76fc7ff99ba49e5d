import { AppError } from '../errors.ts';

const segmentPattern = /^[A-Za-z0-9][A-Za-z0-9._=-]*$/;
const maxKeyLength = 1024;

/**
 * Rejects any key that could escape the store's root or mean different things on different
 * stores: absolute paths, `..`, empty segments, backslashes, and characters outside a small
 * safe set. Callers build keys from ids and partition values, never from raw user text.
 */
export function assertValidStorageKey(key: string): void {
  const segments = key.split('/');
  const valid =
    key.length > 0 &&
    key.length <= maxKeyLength &&
    segments.every((segment) => segmentPattern.test(segment) && segment !== '..');
  if (!valid) throw new AppError('invalid_input', `Invalid storage key: ${JSON.stringify(key)}`);
}

/** A prefix is a key, or the empty string for "everything", optionally ending in `/`. */
export function assertValidStoragePrefix(prefix: string): void {
  if (prefix === '') return;
  assertValidStorageKey(prefix.endsWith('/') ? prefix.slice(0, -1) : prefix);
}
