import { mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { ObjectStore } from '../object-store.ts';
import { createLocalObjectStore } from './local-object-store.ts';

/** What only the local store does; the common suite is object-store.test.ts. */
describe('local object store', () => {
  let root: string;
  let store: ObjectStore;

  beforeEach(async () => {
    root = await mkdtemp(path.join(tmpdir(), 'medlake-store-'));
    store = createLocalObjectStore(root);
  });

  afterEach(async () => {
    await rm(root, { recursive: true, force: true });
  });

  it('stages partial writes out of sight and removes them on failure', async () => {
    await expect(
      store.putFile('landing/job-2.csv', path.join(root, 'missing.csv')),
    ).rejects.toThrow();
    const failing = new Readable({
      read() {
        this.push('partial');
        this.destroy(new Error('connection dropped'));
      },
    });
    await expect(store.put('landing/upload.csv', failing)).rejects.toThrow('connection dropped');
    expect(await readdir(path.join(root, '.staging'))).toEqual([]);
    await store.put('lake/a', 'x');
    expect(await store.list('')).toEqual(['lake/a']);
  });

  it('passes its ping when usable and fails it when its root is not a directory', async () => {
    await expect(store.ping()).resolves.toBeUndefined();
    const file = path.join(root, 'not-a-directory');
    await writeFile(file, 'x');
    await expect(createLocalObjectStore(file).ping()).rejects.toThrow();
  });
});
