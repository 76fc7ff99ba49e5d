import { Readable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { nulCharacterPath } from './validation.ts';

describe('nulCharacterPath', () => {
  it('names where a NUL character is, in a value or a key', () => {
    expect(nulCharacterPath({ a: [{ b: 'ok' }, { b: 'x\u0000' }] })).toBe('a[1].b');
    expect(nulCharacterPath({ ['k\u0000']: 1 })).toBe('k\u0000');
    expect(nulCharacterPath('\u0000')).toBe('(body)');
    expect(nulCharacterPath({ a: 'fine', n: 1, t: true, z: null })).toBeUndefined();
  });

  it('passes over what is not JSON: a streamed body, a buffer', () => {
    const stream = Readable.from(['a\u0000b']);
    expect(nulCharacterPath(stream)).toBeUndefined();
    expect(nulCharacterPath(Buffer.from('a\u0000b'))).toBeUndefined();
  });
});
