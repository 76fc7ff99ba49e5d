import type { Env } from '../env.ts';
import { createLocalObjectStore } from './local/local-object-store.ts';
import type { ObjectStore } from './object-store.ts';
import { s3SettingsOf } from './s3/s3-settings.ts';

/**
 * Creates the object store the configuration names: a folder on this machine, or S3. The AWS
 * SDK is loaded only when S3 is configured, so the one-machine default never loads it.
 */
export async function createObjectStore(env: Env, localRoot: string): Promise<ObjectStore> {
  switch (env.MEDLAKE_STORAGE) {
    case 'local':
      return createLocalObjectStore(localRoot);
    case 's3': {
      const { createS3ObjectStore } = await import('./s3/s3-object-store.ts');
      return createS3ObjectStore(s3SettingsOf(env));
    }
  }
}
