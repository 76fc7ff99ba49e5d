import type { Env } from '../../env.ts';

export type S3StoreSettings = {
  bucket: string;
  /** Prepended to every key, e.g. "medlake/"; empty for the whole bucket. */
  prefix: string;
  region: string;
  /** An S3-compatible server's URL; AWS's own endpoint when absent. */
  endpoint?: string;
  /** Path-style addressing (bucket in the path), which most S3-compatible servers need. */
  forcePathStyle: boolean;
  /**
   * Keys given outright, for the test server; otherwise the AWS SDK's default chain finds
   * them (environment, profile, web identity, instance or task role).
   */
  credentials?: { accessKeyId: string; secretAccessKey: string };
  /**
   * Server-side encryption asked for on every write: S3-managed keys (AES256), or a KMS key
   * (aws:kms, with the key's id or ARN, or the account's default key without one). None: the
   * bucket's default encryption applies.
   */
  encryption?: { algorithm: 'AES256' } | { algorithm: 'aws:kms'; kmsKeyId?: string };
};

/**
 * The S3 store's settings from the configuration (MEDLAKE_S3_*). Kept apart from the store so
 * that reading them does not load the AWS SDK.
 */
export function s3SettingsOf(env: Env): S3StoreSettings {
  // loadEnv has made sure the bucket is there for MEDLAKE_STORAGE=s3.
  const bucket = env.MEDLAKE_S3_BUCKET!;
  const sse = env.MEDLAKE_S3_SSE;
  return {
    bucket,
    prefix: env.MEDLAKE_S3_PREFIX,
    region: env.MEDLAKE_S3_REGION,
    ...(env.MEDLAKE_S3_ENDPOINT ? { endpoint: env.MEDLAKE_S3_ENDPOINT } : {}),
    forcePathStyle: env.MEDLAKE_S3_PATH_STYLE === 'true',
    ...(sse === 'AES256' ? { encryption: { algorithm: 'AES256' } } : {}),
    ...(sse === 'aws:kms'
      ? {
          encryption: {
            algorithm: 'aws:kms',
            ...(env.MEDLAKE_S3_KMS_KEY_ID ? { kmsKeyId: env.MEDLAKE_S3_KMS_KEY_ID } : {}),
          },
        }
      : {}),
  };
}
