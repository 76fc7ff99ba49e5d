import type { Env } from '../env.ts';
import { createLocalObjectStore } from './local/local-object-store.ts';
import type { ObjectStore } from './object-store.ts';

/** Creates the object store the configuration names. S3 joins here as a second case. */
export function createObjectStore(kind: Env['MEDLAKE_STORAGE'], localRoot: string): ObjectStore {
  switch (kind) {
    case 'local':
      return createLocalObjectStore(localRoot);
  }
}
