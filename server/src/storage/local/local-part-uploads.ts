import { createHash, randomUUID } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { mkdir, readdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { AppError, notFound } from '../../errors.ts';
import type { PartUploads, UploadedPart } from '../object-store.ts';

/** S3's bounds, kept here too so that a client behaves the same on either store. */
const maxPartNumber = 10_000;
const uploadIdPattern = /^[0-9a-f-]{36}$/;

/**
 * Part uploads on local disk: each upload is a folder in the store's staging area holding its
 * key and its parts; completing joins the parts into a staged file and renames it into place.
 */
export function createLocalPartUploads(options: {
  stagingRoot: string;
  fileOf: (key: string) => string;
}): PartUploads {
  const folderOf = async (key: string, uploadId: string) => {
    if (!uploadIdPattern.test(uploadId)) throw notFound('upload_not_found', `Upload ${uploadId}`);
    const folder = path.join(options.stagingRoot, 'uploads', uploadId);
    const recorded = await readFile(path.join(folder, 'key'), 'utf8').catch(() => undefined);
    options.fileOf(key);
    if (recorded !== key) throw notFound('upload_not_found', `Upload ${uploadId}`);
    return folder;
  };
  const partFile = (folder: string, partNumber: number) => {
    if (!Number.isInteger(partNumber) || partNumber < 1 || partNumber > maxPartNumber) {
      throw new AppError('upload_invalid', `A part number runs from 1 to ${maxPartNumber}`);
    }
    return path.join(folder, `part-${partNumber}`);
  };

  const uploads: PartUploads = {
    directOrigin: undefined,

    async start(key) {
      options.fileOf(key);
      const uploadId = randomUUID();
      const folder = path.join(options.stagingRoot, 'uploads', uploadId);
      await mkdir(folder, { recursive: true });
      await writeFile(path.join(folder, 'key'), key);
      return uploadId;
    },

    async partUrl() {
      // Parts reach local disk through the medlake server.
      return undefined;
    },

    async put(key, uploadId, partNumber, body) {
      const folder = await folderOf(key, uploadId);
      const target = partFile(folder, partNumber);
      const staged = `${target}.${randomUUID()}.partial`;
      const hash = createHash('md5');
      const source = body instanceof Readable ? body : Readable.from([body]);
      try {
        await pipeline(
          source,
          async function* (chunks) {
            for await (const chunk of chunks) {
              hash.update(chunk as Buffer);
              yield chunk;
            }
          },
          createWriteStream(staged, { flags: 'wx' }),
        );
        await writeFile(`${target}.etag`, hash.digest('hex'));
        await rename(staged, target);
      } catch (error) {
        await rm(staged, { force: true });
        throw error;
      }
    },

    async list(key, uploadId) {
      const folder = await folderOf(key, uploadId);
      const parts: UploadedPart[] = [];
      for (const name of await readdir(folder)) {
        const match = /^part-(\d+)$/.exec(name);
        if (!match) continue;
        const file = path.join(folder, name);
        const etag = await readFile(`${file}.etag`, 'utf8').catch(() => undefined);
        if (etag === undefined) continue;
        parts.push({ partNumber: Number(match[1]), bytes: (await stat(file)).size, etag });
      }
      return parts.sort((a, b) => a.partNumber - b.partNumber);
    },

    async complete(key, uploadId, parts) {
      const folder = await folderOf(key, uploadId);
      if (parts.length === 0) throw new AppError('upload_invalid', 'The upload has no parts');
      const joined = path.join(folder, `joined-${randomUUID()}`);
      const output = createWriteStream(joined, { flags: 'wx' });
      try {
        for (const part of parts) {
          await pipeline(createReadStream(partFile(folder, part.partNumber)), output, {
            end: false,
          });
        }
        await new Promise<void>((resolve, reject) =>
          output.end((error?: Error | null) => (error ? reject(error) : resolve())),
        );
        const target = options.fileOf(key);
        await mkdir(path.dirname(target), { recursive: true });
        await rename(joined, target);
      } catch (error) {
        output.destroy();
        await rm(joined, { force: true });
        throw error;
      }
      await rm(folder, { recursive: true, force: true });
    },

    async abort(key, uploadId) {
      const folder = await folderOf(key, uploadId).catch(() => undefined);
      if (folder) await rm(folder, { recursive: true, force: true });
    },
  };
  return uploads;
}
