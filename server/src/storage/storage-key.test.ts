import { describe, expect, it } from 'vitest';
import { assertValidStorageKey, assertValidStoragePrefix } from './storage-key.ts';

describe('assertValidStorageKey', () => {
  it.each([
    'lake/lab-results/hospital=h1/month=2024-01/part-0.parquet',
    'results/0f8e/page-1.json',
    'landing/upload_12.csv',
  ])('accepts %s', (key) => {
    expect(() => assertValidStorageKey(key)).not.toThrow();
  });

  it.each([
    '',
    '/etc/passwd',
    'lake/../vault/keys',
    '..',
    'lake//double',
    'lake/trailing/',
    'lake\\windows',
    'lake/.hidden',
    'lake/name with space',
    `lake/${'x'.repeat(1100)}`,
  ])('rejects %j', (key) => {
    expect(() => assertValidStorageKey(key)).toThrow(/Invalid storage key/);
  });

  it('accepts prefixes with a trailing slash and the empty prefix', () => {
    expect(() => assertValidStoragePrefix('lake/')).not.toThrow();
    expect(() => assertValidStoragePrefix('')).not.toThrow();
    expect(() => assertValidStoragePrefix('../')).toThrow();
  });
});
