import type { Catalog } from './catalog/catalog.ts';
import type { QueryEngine } from './engines/types.ts';
import type { PrivacySecrets } from './privacy/privacy-secrets.ts';
import type { ObjectStore } from './storage/object-store.ts';

/**
 * The open parts the engine-neutral core (query/, privacy/) works with. platform.ts opens
 * them, and its Platform has all of these; the core names only this type, so that it never
 * imports platform.ts, which sits above it with the use-cases.
 */
export type PlatformParts = {
  readonly catalog: Catalog;
  readonly engine: QueryEngine;
  readonly store: ObjectStore;
  /** Each project's own pseudonyms in row-level results, and the noise of noisy answers. */
  readonly privacy: PrivacySecrets;
};
