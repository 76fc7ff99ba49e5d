import {
  AbortMultipartUploadCommand,
  CompleteMultipartUploadCommand,
  CreateMultipartUploadCommand,
  ListPartsCommand,
  UploadPartCommand,
  type S3Client,
} from '@aws-sdk/client-s3';
import { getSignedUrl } from '@aws-sdk/s3-request-presigner';
import { Readable } from 'node:stream';
import { AppError, notFound } from '../../errors.ts';
import type { PartUploads, UploadedPart } from '../object-store.ts';

const maxPartNumber = 10_000;

/**
 * Part uploads as S3 multipart uploads: clients PUT parts to presigned URLs straight into the
 * bucket, S3 lists what arrived, and completing makes the object appear whole.
 */
export function createS3PartUploads(options: {
  client: S3Client;
  /** The client that presigns part URLs (one that bakes no checksum into them). */
  signer: S3Client;
  /** Where part URLs point, for the web app's content security policy. */
  origin: string;
  bucket: string;
  objectKey: (key: string) => string;
  isMissing: (error: unknown) => boolean;
  /** Encryption parameters every new object is written with. */
  encryption: Record<string, string>;
}): PartUploads {
  const { client, bucket, objectKey } = options;
  const checkedPart = (partNumber: number) => {
    if (!Number.isInteger(partNumber) || partNumber < 1 || partNumber > maxPartNumber) {
      throw new AppError('upload_invalid', `A part number runs from 1 to ${maxPartNumber}`);
    }
    return partNumber;
  };
  const missingAsNotFound = async <T>(uploadId: string, call: () => Promise<T>) => {
    try {
      return await call();
    } catch (error) {
      if (options.isMissing(error) || (error as Error).name === 'NoSuchUpload') {
        throw notFound('upload_not_found', `Upload ${uploadId}`);
      }
      throw error;
    }
  };

  const listAll = async (key: string, uploadId: string) => {
    const parts: UploadedPart[] = [];
    let marker: string | undefined;
    do {
      const page = await missingAsNotFound(uploadId, () =>
        client.send(
          new ListPartsCommand({
            Bucket: bucket,
            Key: objectKey(key),
            UploadId: uploadId,
            PartNumberMarker: marker,
          }),
        ),
      );
      for (const part of page.Parts ?? []) {
        parts.push({
          partNumber: part.PartNumber ?? 0,
          bytes: part.Size ?? 0,
          etag: part.ETag ?? '',
        });
      }
      marker = page.IsTruncated ? page.NextPartNumberMarker : undefined;
    } while (marker);
    return parts.sort((a, b) => a.partNumber - b.partNumber);
  };

  return {
    directOrigin: options.origin,

    async start(key) {
      const created = await client.send(
        new CreateMultipartUploadCommand({
          Bucket: bucket,
          Key: objectKey(key),
          ...options.encryption,
        }),
      );
      if (!created.UploadId) throw new AppError('internal', 'S3 gave no upload id');
      return created.UploadId;
    },

    async partUrl(key, uploadId, partNumber, expiresInSeconds) {
      const command = new UploadPartCommand({
        Bucket: bucket,
        Key: objectKey(key),
        UploadId: uploadId,
        PartNumber: checkedPart(partNumber),
      });
      return getSignedUrl(options.signer, command, { expiresIn: expiresInSeconds });
    },

    async put(key, uploadId, partNumber, body) {
      // A part's length must be known to S3: a stream is read whole first. Only medlake's own
      // code puts parts this way; the upload API sends clients to `partUrl` instead.
      const bytes =
        body instanceof Readable ? Buffer.concat(await body.toArray()) : Buffer.from(body);
      await missingAsNotFound(uploadId, () =>
        client.send(
          new UploadPartCommand({
            Bucket: bucket,
            Key: objectKey(key),
            UploadId: uploadId,
            PartNumber: checkedPart(partNumber),
            Body: bytes,
          }),
        ),
      );
    },

    list: listAll,

    async complete(key, uploadId, parts) {
      if (parts.length === 0) throw new AppError('upload_invalid', 'The upload has no parts');
      await missingAsNotFound(uploadId, () =>
        client.send(
          new CompleteMultipartUploadCommand({
            Bucket: bucket,
            Key: objectKey(key),
            UploadId: uploadId,
            MultipartUpload: {
              Parts: parts.map((part) => ({ PartNumber: part.partNumber, ETag: part.etag })),
            },
          }),
        ),
      );
    },

    async abort(key, uploadId) {
      await client
        .send(
          new AbortMultipartUploadCommand({
            Bucket: bucket,
            Key: objectKey(key),
            UploadId: uploadId,
          }),
        )
        .catch((error: unknown) => {
          if (!options.isMissing(error) && (error as Error).name !== 'NoSuchUpload') throw error;
        });
    },
  };
}
