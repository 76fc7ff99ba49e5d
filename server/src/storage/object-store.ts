import type { Readable } from 'node:stream';

/**
 * Where files live: landing (raw uploads), lake (Parquet), results (query outputs). A local
 * directory by default, S3 at scale. Keys look like `lake/lab-results/hospital=h1/month=2024-01/
 * part-0.parquet`; every implementation checks them with assertValidStorageKey.
 */
export interface ObjectStore {
  readonly kind: StorageKind;
  /** Writes the whole object or nothing: readers never see a partly written object. */
  put(key: string, body: Readable | Uint8Array | string): Promise<void>;
  /** Copies a local file in as the object, as put does but without streaming it through Node. */
  putFile(key: string, file: string): Promise<void>;
  /** Streams the object; rejects with a NOT_FOUND AppError when it does not exist. */
  get(key: string): Promise<Readable>;
  exists(key: string): Promise<boolean>;
  /** The object's size in bytes; rejects with NOT_FOUND when it does not exist. */
  size(key: string): Promise<number>;
  /** Every key under the prefix, sorted. */
  list(prefix: string): Promise<string[]>;
  /** How many objects there are under the prefix, and their bytes together. */
  usage(prefix: string): Promise<{ objects: number; bytes: number }>;
  /** Deletes the object; deleting a missing object is not an error. */
  delete(key: string): Promise<void>;
  /** Where an engine reads or writes the object: a file path here, an s3:// URL on S3. */
  locate(key: string): string;
  /**
   * Where an engine writes the object itself (a query result): like locate, with whatever the
   * store needs made ready first. Readers are pointed at it only once the writer has finished.
   */
  locateForWrite(key: string): Promise<string>;
  /**
   * A URL that downloads the object without the medlake server, valid for a while and saved
   * under the file name given; undefined where the store has no such URLs (local disk, where
   * the server signs and serves its own download links).
   */
  downloadUrl(
    key: string,
    options: { fileName: string; expiresInSeconds: number },
  ): Promise<string | undefined>;
  /** Writes, reads back and deletes a probe object; rejects when the store is unusable. */
  ping(): Promise<void>;
}

export type StorageKind = 'local' | 's3';

export const storageZones = ['landing', 'lake', 'results'] as const;
export type StorageZone = (typeof storageZones)[number];
