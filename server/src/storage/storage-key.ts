import { AppError } from '../errors.ts';

// Segments that start with a letter or digit (so never `.`, `..` or empty), joined by `/`: one
// pattern for the whole key, since a query over a large lake locates tens of thousands of files.
const keyPattern = /^[A-Za-z0-9][A-Za-z0-9._=-]*(?:\/[A-Za-z0-9][A-Za-z0-9._=-]*)*$/;
const maxKeyLength = 1024;

/**
 * Rejects any key that could escape the store's root or mean different things on different
 * stores: absolute paths, `..`, empty segments, backslashes, and characters outside a small
 * safe set. Callers build keys from ids and partition values, never from raw user text.
 */
export function assertValidStorageKey(key: string): void {
  const valid = key.length <= maxKeyLength && keyPattern.test(key);
  if (!valid) throw new AppError('invalid_input', `Invalid storage key: ${JSON.stringify(key)}`);
}

/** A prefix is a key, or the empty string for "everything", optionally ending in `/`. */
export function assertValidStoragePrefix(prefix: string): void {
  if (prefix === '') return;
  assertValidStorageKey(prefix.endsWith('/') ? prefix.slice(0, -1) : prefix);
}
