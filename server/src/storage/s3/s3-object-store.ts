import { createReadStream } from 'node:fs';
import type { Readable } from 'node:stream';
import {
  DeleteObjectCommand,
  DeleteObjectsCommand,
  GetObjectCommand,
  HeadObjectCommand,
  ListObjectsV2Command,
  S3Client,
  S3ServiceException,
  type S3ClientConfig,
} from '@aws-sdk/client-s3';
import { Upload } from '@aws-sdk/lib-storage';
import { getSignedUrl } from '@aws-sdk/s3-request-presigner';
import { notFound } from '../../errors.ts';
import type { ObjectStore } from '../object-store.ts';
import { copyObject } from './s3-copy.ts';
import { createS3PartUploads } from './s3-part-uploads.ts';
import { reportUnreachableStore } from './s3-unreachable.ts';
import type { S3StoreSettings } from './s3-settings.ts';
import { assertValidStorageKey, assertValidStoragePrefix } from '../storage-key.ts';

/** Parts of a multipart write; S3 wants at least 5 MiB for all but the last. */
const partBytes = 8 * 1024 * 1024;
/** Parts uploaded at once for one object. */
const partsInFlight = 4;

/**
 * An object store on S3 or an S3-compatible server. Every write is whole or nothing (a single
 * PUT, or a multipart upload that is completed only once every part is in, and aborted on
 * failure), every request is retried with backoff by the SDK, and every body carries a
 * checksum that S3 verifies.
 */
export function createS3ObjectStore(settings: S3StoreSettings): ObjectStore {
  const config: S3ClientConfig = {
    region: settings.region,
    forcePathStyle: settings.forcePathStyle,
    maxAttempts: 5,
    ...(settings.endpoint ? { endpoint: settings.endpoint } : {}),
    ...(settings.credentials ? { credentials: settings.credentials } : {}),
  };
  const client = new S3Client(config);
  reportUnreachableStore(client, settings.endpoint ?? `s3://${settings.bucket}`);
  // Presigned URLs are signed before there is a body: a checksum computed then would be the
  // empty body's, baked into the URL, and S3 would refuse the real bytes. The client that
  // signs them adds a checksum only where S3 requires one.
  const signer = new S3Client({ ...config, requestChecksumCalculation: 'WHEN_REQUIRED' });
  const encryption = settings.encryption
    ? {
        ServerSideEncryption: settings.encryption.algorithm,
        ...('kmsKeyId' in settings.encryption && settings.encryption.kmsKeyId
          ? { SSEKMSKeyId: settings.encryption.kmsKeyId }
          : {}),
      }
    : {};
  const { bucket } = settings;
  const objectKey = (key: string) => {
    assertValidStorageKey(key);
    return `${settings.prefix}${key}`;
  };
  const storeKey = (s3Key: string) => s3Key.slice(settings.prefix.length);

  async function* listed(prefix: string) {
    assertValidStoragePrefix(prefix);
    let continuationToken: string | undefined;
    do {
      const page = await client.send(
        new ListObjectsV2Command({
          Bucket: bucket,
          Prefix: `${settings.prefix}${prefix}`,
          ContinuationToken: continuationToken,
        }),
      );
      for (const item of page.Contents ?? []) {
        if (item.Key) yield { key: storeKey(item.Key), bytes: item.Size ?? 0 };
      }
      continuationToken = page.IsTruncated ? page.NextContinuationToken : undefined;
    } while (continuationToken);
  }

  const head = async (key: string) => {
    try {
      return await client.send(new HeadObjectCommand({ Bucket: bucket, Key: objectKey(key) }));
    } catch (error) {
      if (isMissing(error)) return undefined;
      throw error;
    }
  };

  const store: ObjectStore = {
    kind: 's3',
    engineAccess: {
      region: settings.region,
      ...(settings.endpoint ? { endpoint: settings.endpoint } : {}),
      pathStyle: settings.forcePathStyle,
      // The client's own provider: the standard chain, cached and renewed before expiry.
      credentials: () => client.config.credentials(),
    },
    parts: createS3PartUploads({
      client,
      signer,
      bucket,
      objectKey,
      isMissing,
      encryption,
      origin: directOrigin(settings),
    }),

    async put(key, body) {
      const upload = new Upload({
        client,
        params: {
          Bucket: bucket,
          Key: objectKey(key),
          Body: typeof body === 'string' ? Buffer.from(body) : body,
          ChecksumAlgorithm: 'CRC32',
          ...encryption,
        },
        partSize: partBytes,
        queueSize: partsInFlight,
        leavePartsOnError: false,
      });
      await upload.done();
    },

    async putFile(key, file) {
      await store.put(key, createReadStream(file));
    },

    async get(key) {
      try {
        const object = await client.send(
          new GetObjectCommand({ Bucket: bucket, Key: objectKey(key), ChecksumMode: 'ENABLED' }),
        );
        return object.Body as Readable;
      } catch (error) {
        if (isMissing(error)) throw notFound('object_not_found', `Object ${key}`);
        throw error;
      }
    },

    async exists(key) {
      return (await head(key)) !== undefined;
    },

    async contentTag(key) {
      const found = await head(key);
      if (!found?.ETag) throw notFound('object_not_found', `Object ${key}`);
      return `s3-etag:${found.ETag.replaceAll('"', '')}`;
    },

    async size(key) {
      const found = await head(key);
      if (!found) throw notFound('object_not_found', `Object ${key}`);
      return found.ContentLength ?? 0;
    },

    async list(prefix) {
      const keys: string[] = [];
      for await (const item of listed(prefix)) keys.push(item.key);
      return keys.sort();
    },

    async usage(prefix) {
      let objects = 0;
      let bytes = 0;
      for await (const item of listed(prefix)) {
        objects += 1;
        bytes += item.bytes;
      }
      return { objects, bytes };
    },

    async delete(key) {
      // S3 answers a delete of a missing key with success.
      await client.send(new DeleteObjectCommand({ Bucket: bucket, Key: objectKey(key) }));
    },

    async deleteFolder(folder) {
      assertValidStorageKey(folder);
      // Listed raw: an engine's markers (_SUCCESS, folder markers) are no keys of medlake's.
      const prefix = `${settings.prefix}${folder}/`;
      let continuationToken: string | undefined;
      do {
        const page = await client.send(
          new ListObjectsV2Command({
            Bucket: bucket,
            Prefix: prefix,
            ContinuationToken: continuationToken,
          }),
        );
        const objects = (page.Contents ?? []).flatMap((item) =>
          item.Key ? [{ Key: item.Key }] : [],
        );
        if (objects.length > 0) {
          await client.send(
            new DeleteObjectsCommand({ Bucket: bucket, Delete: { Objects: objects, Quiet: true } }),
          );
        }
        continuationToken = page.IsTruncated ? page.NextContinuationToken : undefined;
      } while (continuationToken);
    },

    async move(from, to) {
      const found = await head(from);
      if (!found) throw notFound('object_not_found', `Object ${from}`);
      await copyObject(client, {
        bucket,
        from: objectKey(from),
        to: objectKey(to),
        bytes: found.ContentLength ?? 0,
        encryption,
      });
      await store.delete(from);
    },

    locate(key) {
      return `s3://${bucket}/${objectKey(key)}`;
    },

    keyOf(location) {
      const root = `s3://${bucket}/${settings.prefix}`;
      if (!location.startsWith(root)) return undefined;
      const key = location.slice(root.length);
      assertValidStorageKey(key);
      return key;
    },

    async locateForWrite(key) {
      return store.locate(key);
    },

    async downloadUrl(key, { fileName, expiresInSeconds }) {
      // The name is the store's own (export.csv, result.parquet), never user text.
      const command = new GetObjectCommand({
        Bucket: bucket,
        Key: objectKey(key),
        ResponseContentDisposition: `attachment; filename="${fileName.replace(/[^A-Za-z0-9._-]/g, '_')}"`,
      });
      return getSignedUrl(signer, command, { expiresIn: expiresInSeconds });
    },

    async ping() {
      const probe = `results/ping-${process.pid}-${Date.now()}`;
      await store.put(probe, 'ok');
      // Read to the end, so that the connection is released.
      await (await store.get(probe)).toArray();
      await store.delete(probe);
    },
  };
  return store;
}

/** The origin presigned URLs point at: the S3-compatible server's, or AWS's for the bucket. */
function directOrigin(settings: S3StoreSettings): string {
  const endpoint = new URL(settings.endpoint ?? `https://s3.${settings.region}.amazonaws.com`);
  if (!settings.forcePathStyle) endpoint.hostname = `${settings.bucket}.${endpoint.hostname}`;
  return endpoint.origin;
}

function isMissing(error: unknown): boolean {
  return (
    error instanceof S3ServiceException &&
    (error.name === 'NoSuchKey' ||
      error.name === 'NotFound' ||
      error.$metadata.httpStatusCode === 404)
  );
}
