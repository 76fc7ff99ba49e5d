import { createHash, randomUUID } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { copyFile, mkdir, readdir, rename, rm, stat } from 'node:fs/promises';
import path from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { notFound } from '../../errors.ts';
import type { ObjectStore } from '../object-store.ts';
import { assertValidStorageKey, assertValidStoragePrefix } from '../storage-key.ts';
import { createLocalPartUploads } from './local-part-uploads.ts';

/** Partly written objects live here until renamed into place; never listed. */
const stagingDirectory = '.staging';

/** An object store on local disk: one file per object under the root directory. */
export function createLocalObjectStore(root: string): ObjectStore {
  // What path.join(root, key) starts with, for any valid key (segments that are plain names):
  // put in front of a key, it gives the same path without normalising the key again, which
  // a query over a large lake would do for each of tens of thousands of files.
  const prefix = path.sep === '/' ? path.join(root, 'x').slice(0, -1) : undefined;
  const fileOf = (key: string) => {
    assertValidStorageKey(key);
    return prefix === undefined ? path.join(root, key) : prefix + key;
  };

  /** Writes into the staging directory, then renames into place: whole or not at all. */
  const writeAtomically = async (key: string, write: (staging: string) => Promise<void>) => {
    const target = fileOf(key);
    const staging = path.join(root, stagingDirectory, randomUUID());
    await mkdir(path.dirname(staging), { recursive: true });
    await mkdir(path.dirname(target), { recursive: true });
    try {
      await write(staging);
      // rename within one file system is atomic.
      await rename(staging, target);
    } catch (error) {
      await rm(staging, { force: true });
      throw error;
    }
  };

  const store: ObjectStore = {
    kind: 'local',
    parts: createLocalPartUploads({ stagingRoot: path.join(root, stagingDirectory), fileOf }),

    async put(key, body) {
      const source = body instanceof Readable ? body : Readable.from([body]);
      await writeAtomically(key, (staging) =>
        pipeline(source, createWriteStream(staging, { flags: 'wx' })),
      );
    },

    async putFile(key, file) {
      // The kernel copies (or clones, where the file system can) without Node touching data.
      await writeAtomically(key, (staging) => copyFile(file, staging));
    },

    async get(key) {
      const file = fileOf(key);
      if (!(await isFile(file))) throw notFound('object_not_found', `Object ${key}`);
      return createReadStream(file);
    },

    async exists(key) {
      return isFile(fileOf(key));
    },

    async contentTag(key) {
      const hash = createHash('sha256');
      await pipeline(await store.get(key), hash);
      return hash.digest('hex');
    },

    async list(prefix) {
      assertValidStoragePrefix(prefix);
      // Walk only the deepest directory the prefix names, then filter by the rest of it.
      const directoryPart = prefix.includes('/') ? prefix.slice(0, prefix.lastIndexOf('/')) : '';
      const start = path.join(root, ...directoryPart.split('/').filter(Boolean));
      let entries;
      try {
        entries = await readdir(start, { recursive: true, withFileTypes: true });
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code === 'ENOENT') return [];
        throw error;
      }
      return entries
        .filter((entry) => entry.isFile())
        .map((entry) => path.relative(root, path.join(entry.parentPath, entry.name)))
        .map((relative) => relative.split(path.sep).join('/'))
        .filter((key) => key.startsWith(prefix) && !key.startsWith(`${stagingDirectory}/`))
        .sort();
    },

    async usage(prefix) {
      let bytes = 0;
      const keys = await store.list(prefix);
      for (const key of keys) bytes += (await stat(fileOf(key))).size;
      return { objects: keys.length, bytes };
    },

    async size(key) {
      try {
        return (await stat(fileOf(key))).size;
      } catch {
        throw notFound('object_not_found', `Object ${key}`);
      }
    },

    async delete(key) {
      await rm(fileOf(key), { force: true });
    },

    async deleteFolder(folder) {
      await rm(fileOf(folder), { recursive: true, force: true });
    },

    async move(from, to) {
      const source = fileOf(from);
      if (!(await isFile(source))) throw notFound('object_not_found', `Object ${from}`);
      await mkdir(path.dirname(fileOf(to)), { recursive: true });
      await rename(source, fileOf(to));
    },

    locate(key) {
      return fileOf(key);
    },

    keyOf(location) {
      const relative = path.relative(root, location);
      if (relative === '' || relative.startsWith('..') || path.isAbsolute(relative))
        return undefined;
      const key = relative.split(path.sep).join('/');
      assertValidStorageKey(key);
      return key;
    },

    async locateForWrite(key) {
      const file = fileOf(key);
      await mkdir(path.dirname(file), { recursive: true });
      return file;
    },

    async downloadUrl() {
      // Downloads from local disk go through the server's own signed links.
      return undefined;
    },

    async ping() {
      const probe = `health/probe-${randomUUID()}`;
      await store.put(probe, 'ok');
      const chunks: Buffer[] = [];
      for await (const chunk of await store.get(probe)) chunks.push(chunk as Buffer);
      await store.delete(probe);
      if (Buffer.concat(chunks).toString() !== 'ok')
        throw new Error('probe object read back wrong');
    },
  };
  return store;
}

async function isFile(file: string): Promise<boolean> {
  try {
    return (await stat(file)).isFile();
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return false;
    throw error;
  }
}
