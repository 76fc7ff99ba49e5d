import { mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { text } from 'node:stream/consumers';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { ObjectStore } from '../object-store.ts';
import { createLocalObjectStore } from './local-object-store.ts';

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

  it('writes and reads back strings, bytes and streams', async () => {
    await store.put('lake/a.txt', 'alpha');
    await store.put('lake/b.bin', new Uint8Array([1, 2, 3]));
    await store.put('lake/c.txt', Readable.from(['str', 'eam']));

    expect(await text(await store.get('lake/a.txt'))).toBe('alpha');
    expect([...(await (await store.get('lake/b.bin')).toArray())[0]]).toEqual([1, 2, 3]);
    expect(await text(await store.get('lake/c.txt'))).toBe('stream');
  });

  it('copies a local file in as an object, and locates it for the engines', async () => {
    const file = path.join(root, 'outside.csv');
    await writeFile(file, 'a,b\n1,2\n');
    await store.putFile('landing/job-1.csv', file);
    expect(await text(await store.get('landing/job-1.csv'))).toBe('a,b\n1,2\n');
    expect(store.locate('landing/job-1.csv')).toBe(path.join(root, 'landing', 'job-1.csv'));
    await expect(
      store.putFile('landing/job-2.csv', path.join(root, 'missing.csv')),
    ).rejects.toThrow();
    expect(await readdir(path.join(root, '.staging'))).toEqual([]);
  });

  it('replaces an object whole when written again', async () => {
    await store.put('results/r.json', '{"v":1}');
    await store.put('results/r.json', '{"v":2}');
    expect(await text(await store.get('results/r.json'))).toBe('{"v":2}');
  });

  it('leaves nothing behind when the source stream fails', async () => {
    const failing = new Readable({
      read() {
        this.push('partial');
        this.destroy(new Error('connection dropped'));
      },
    });
    await expect(store.put('landing/upload.csv', failing)).rejects.toThrow('connection dropped');
    expect(await store.exists('landing/upload.csv')).toBe(false);
    expect(await readdir(path.join(root, '.staging'))).toEqual([]);
  });

  it('lists keys under a prefix, sorted, without staging files', async () => {
    await store.put('lake/ds/hospital=h2/part-0.parquet', 'x');
    await store.put('lake/ds/hospital=h1/part-0.parquet', 'x');
    await store.put('lake/other/part-0.parquet', 'x');
    await store.put('results/q/page-1.json', 'x');

    expect(await store.list('lake/ds/')).toEqual([
      'lake/ds/hospital=h1/part-0.parquet',
      'lake/ds/hospital=h2/part-0.parquet',
    ]);
    expect(await store.list('lake/ds/hospital=h1')).toEqual(['lake/ds/hospital=h1/part-0.parquet']);
    expect(await store.list('nothing/here/')).toEqual([]);
    expect(await store.list('')).toHaveLength(4);
  });

  it('counts the objects and bytes under a prefix', async () => {
    await store.put('lake/ds/a.parquet', 'abc');
    await store.put('lake/ds/b.parquet', new Uint8Array(1000));
    await store.put('results/q.parquet', 'x');
    expect(await store.usage('lake/')).toEqual({ objects: 2, bytes: 1003 });
    expect(await store.usage('landing/')).toEqual({ objects: 0, bytes: 0 });
  });

  it('answers NOT_FOUND for a missing object and deletes idempotently', async () => {
    await expect(store.get('lake/missing')).rejects.toMatchObject({ code: 'NOT_FOUND' });
    await store.put('lake/x', 'x');
    await store.delete('lake/x');
    await store.delete('lake/x');
    expect(await store.exists('lake/x')).toBe(false);
  });

  it('refuses keys that would leave its root', async () => {
    await expect(store.put('../escape', 'x')).rejects.toThrow(/Invalid storage key/);
    await expect(store.get('lake/../../etc/passwd')).rejects.toThrow(/Invalid storage key/);
  });

  it('passes its ping when usable and fails it when its root is not a directory', async () => {
    await expect(store.ping()).resolves.toBeUndefined();
    const file = path.join(root, 'not-a-directory');
    await writeFile(file, 'x');
    await expect(createLocalObjectStore(file).ping()).rejects.toThrow();
  });
});
