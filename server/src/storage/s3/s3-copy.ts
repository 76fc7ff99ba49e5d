import {
  AbortMultipartUploadCommand,
  CompleteMultipartUploadCommand,
  CopyObjectCommand,
  CreateMultipartUploadCommand,
  UploadPartCopyCommand,
  type S3Client,
} from '@aws-sdk/client-s3';

/** S3 copies at most 5 GiB in one request; larger objects are copied in parts. */
const s3Limits = { largestSingleCopy: 5 * 1024 ** 3, partBytes: 512 * 1024 ** 2 };

/**
 * Copies an object inside the bucket without its bytes passing through medlake: in one
 * request up to 5 GiB, above that as a multipart upload of ranges, completed whole or aborted.
 */
export async function copyObject(
  client: S3Client,
  copy: {
    bucket: string;
    from: string;
    to: string;
    bytes: number;
    encryption: Record<string, string>;
  },
  limits = s3Limits,
): Promise<void> {
  const { bucket, from, to, encryption } = copy;
  const { largestSingleCopy, partBytes } = limits;
  const source = `${bucket}/${from.split('/').map(encodeURIComponent).join('/')}`;
  if (copy.bytes <= largestSingleCopy) {
    await client.send(
      new CopyObjectCommand({ Bucket: bucket, Key: to, CopySource: source, ...encryption }),
    );
    return;
  }
  const { UploadId } = await client.send(
    new CreateMultipartUploadCommand({ Bucket: bucket, Key: to, ...encryption }),
  );
  try {
    const parts = [];
    for (let start = 0, part = 1; start < copy.bytes; start += partBytes, part += 1) {
      const end = Math.min(start + partBytes, copy.bytes) - 1;
      const copied = await client.send(
        new UploadPartCopyCommand({
          Bucket: bucket,
          Key: to,
          UploadId,
          PartNumber: part,
          CopySource: source,
          CopySourceRange: `bytes=${start}-${end}`,
        }),
      );
      parts.push({ PartNumber: part, ETag: copied.CopyPartResult?.ETag });
    }
    await client.send(
      new CompleteMultipartUploadCommand({
        Bucket: bucket,
        Key: to,
        UploadId,
        MultipartUpload: { Parts: parts },
      }),
    );
  } catch (error) {
    await client
      .send(new AbortMultipartUploadCommand({ Bucket: bucket, Key: to, UploadId }))
      .catch(() => undefined);
    throw error;
  }
}
