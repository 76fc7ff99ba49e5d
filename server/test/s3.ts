import { randomBytes } from 'node:crypto';
import {
  CreateBucketCommand,
  DeleteBucketCommand,
  DeleteObjectsCommand,
  ListObjectsV2Command,
  S3Client,
} from '@aws-sdk/client-s3';
import type { S3StoreSettings } from '../src/storage/s3/s3-settings.ts';

/**
 * The S3-compatible server the S3 tests run against: the one `npm run test:all` starts with
 * scripts/services/s3.sh and names in MEDLAKE_TEST_S3_URL (http://KEY:SECRET@host:port).
 */
export function testS3Url(): URL {
  const url = process.env.MEDLAKE_TEST_S3_URL;
  if (!url) {
    throw new Error(
      'No S3 server for the S3 tests: run them with `npm run test:all`, or start one with `bash scripts/services/s3.sh start` and set MEDLAKE_TEST_S3_URL to the URL it prints',
    );
  }
  return new URL(url);
}

/** A fresh bucket on the test server, with the settings of a store in it; drop() empties and removes it. */
export async function testBucket(
  prefix = 'medlake/',
): Promise<{ settings: S3StoreSettings; drop(): Promise<void> }> {
  const url = testS3Url();
  const settings: S3StoreSettings = {
    bucket: `medlake-test-${randomBytes(6).toString('hex')}`,
    prefix,
    region: 'us-east-1',
    endpoint: `${url.protocol}//${url.host}`,
    forcePathStyle: true,
    credentials: {
      accessKeyId: decodeURIComponent(url.username),
      secretAccessKey: decodeURIComponent(url.password),
    },
  };
  const client = new S3Client({ ...settings, maxAttempts: 2 });
  await client.send(new CreateBucketCommand({ Bucket: settings.bucket }));
  return {
    settings,
    async drop() {
      // Page by page, until the bucket is empty (a listing holds at most 1000 keys).
      for (;;) {
        const listed = await client.send(new ListObjectsV2Command({ Bucket: settings.bucket }));
        const objects = (listed.Contents ?? []).map((item) => ({ Key: item.Key }));
        if (objects.length === 0) break;
        await client.send(
          new DeleteObjectsCommand({ Bucket: settings.bucket, Delete: { Objects: objects } }),
        );
      }
      try {
        await client.send(new DeleteBucketCommand({ Bucket: settings.bucket }));
      } catch (error) {
        // S3Proxy's file system keeps the empty folders of S3A's folder markers, and refuses
        // to drop a bucket that holds them although it lists nothing; s3.sh stop removes them.
        if ((error as Error).name !== 'BucketNotEmpty') throw error;
      } finally {
        client.destroy();
      }
    },
  };
}

/**
 * Where the tests find DuckDB's httpfs extension, which the DuckDB engine needs to reach S3:
 * `npm run test:all` installs it with scripts/install-httpfs.sh and names the folder in
 * MEDLAKE_TEST_DUCKDB_EXTENSIONS.
 */
export function testDuckDbExtensions(): string {
  const directory = process.env.MEDLAKE_TEST_DUCKDB_EXTENSIONS;
  if (!directory) {
    throw new Error(
      'No DuckDB httpfs extension for the S3 tests: run them with `npm run test:all`, or install it with `bash scripts/install-httpfs.sh .test-services/duckdb-extensions` and set MEDLAKE_TEST_DUCKDB_EXTENSIONS to the folder it prints',
    );
  }
  return directory;
}

/**
 * A deployment's settings for a store in a fresh bucket on the test server: the configuration
 * a server would be given, with the credentials in the environment, where the AWS SDK's
 * standard chain finds them as it would in production. drop() removes the bucket.
 */
export async function s3DeploymentEnv(): Promise<{
  env: Record<string, string>;
  drop(): Promise<void>;
}> {
  const bucket = await testBucket();
  const { settings } = bucket;
  process.env.AWS_ACCESS_KEY_ID = settings.credentials!.accessKeyId;
  process.env.AWS_SECRET_ACCESS_KEY = settings.credentials!.secretAccessKey;
  return {
    env: {
      MEDLAKE_STORAGE: 's3',
      MEDLAKE_S3_BUCKET: settings.bucket,
      MEDLAKE_S3_PREFIX: settings.prefix,
      MEDLAKE_S3_ENDPOINT: settings.endpoint!,
      MEDLAKE_S3_PATH_STYLE: 'true',
      MEDLAKE_DUCKDB_EXTENSIONS: testDuckDbExtensions(),
    },
    drop: () => bucket.drop(),
  };
}
