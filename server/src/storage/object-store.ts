import type { Readable } from 'node:stream';

/**
 * Where files live: landing (raw uploads), lake (Parquet), results (query outputs). A local
 * directory by default, S3 at scale. Keys look like `lake/lab-results/hospital=h1/month=2024-01/
 * part-0.parquet`; every implementation checks them with assertValidStorageKey.
 */
export interface ObjectStore {
  readonly kind: StorageKind;
  /**
   * How an engine reaches the objects itself, where `locate` gives URLs rather than paths:
   * the S3 endpoint and credentials. Undefined on local disk.
   */
  readonly engineAccess?: S3Access;
  /** Writes the whole object or nothing: readers never see a partly written object. */
  put(key: string, body: Readable | Uint8Array | string): Promise<void>;
  /** Copies a local file in as the object, as put does but without streaming it through Node. */
  putFile(key: string, file: string): Promise<void>;
  /** Streams the object; rejects with a NOT_FOUND AppError when it does not exist. */
  get(key: string): Promise<Readable>;
  exists(key: string): Promise<boolean>;
  /** The object's size in bytes; rejects with NOT_FOUND when it does not exist. */
  size(key: string): Promise<number>;
  /**
   * What identifies the object's content, without reading it where the store can say: the
   * SHA-256 (hex) on local disk, the ETag on S3 (`s3-etag:…`; for an object uploaded in parts,
   * a digest of its parts' digests, so the same file in the same parts gives the same tag).
   */
  contentTag(key: string): Promise<string>;
  /** Every key under the prefix, sorted. */
  list(prefix: string): Promise<string[]>;
  /** How many objects there are under the prefix, and their bytes together. */
  usage(prefix: string): Promise<{ objects: number; bytes: number }>;
  /** Deletes the object; deleting a missing object is not an error. */
  delete(key: string): Promise<void>;
  /**
   * Deletes everything under the folder, whatever its names: also the markers and checksum
   * files an engine leaves beside what it writes, which are not keys of the store's own.
   */
  deleteFolder(folder: string): Promise<void>;
  /** Moves an object to another key, replacing what is there (a rename, or a copy on S3). */
  move(from: string, to: string): Promise<void>;
  /** Where an engine reads or writes the object: a file path here, an s3:// URL on S3. */
  locate(key: string): string;
  /** The key a location of this store stands for (the inverse of locate); undefined outside it. */
  keyOf(location: string): string | undefined;
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
  /** Large objects written in numbered parts, resumably. */
  readonly parts: PartUploads;
}

/**
 * An object written in numbered parts that may arrive over several connections, in any order:
 * after a dropped connection the writer lists the parts that arrived and sends only the
 * others. The object appears, whole, only when the upload is completed.
 */
export interface PartUploads {
  /**
   * Where clients send parts themselves (`partUrl`), so that the medlake server never carries
   * them: the origin of those URLs (for the web app's content security policy). Undefined
   * where parts go through the server, with `put`.
   */
  readonly directOrigin: string | undefined;
  /** Begins an upload of the object; returns its id. */
  start(key: string): Promise<string>;
  /**
   * A URL the client PUTs one part's bytes to itself, bypassing the medlake server (presigned
   * on S3); undefined where parts go through the server, with `put`.
   */
  partUrl(
    key: string,
    uploadId: string,
    partNumber: number,
    expiresInSeconds: number,
  ): Promise<string | undefined>;
  /** Stores one part (numbered from 1), replacing an earlier copy of it. */
  put(
    key: string,
    uploadId: string,
    partNumber: number,
    body: Readable | Uint8Array,
  ): Promise<void>;
  /** The parts that arrived, by number. Rejects with NOT_FOUND for an unknown upload. */
  list(key: string, uploadId: string): Promise<UploadedPart[]>;
  /** Joins the parts, as `list` gave them, in order, into the object. */
  complete(key: string, uploadId: string, parts: readonly UploadedPart[]): Promise<void>;
  /** Drops the upload and its parts; the object is not written. */
  abort(key: string, uploadId: string): Promise<void>;
}

export type UploadedPart = { partNumber: number; bytes: number; etag: string };

export type StorageKind = 'local' | 's3';

export type S3Access = {
  region: string;
  /** An S3-compatible server's URL; AWS's own endpoint when absent. */
  endpoint?: string;
  pathStyle: boolean;
  /** The store's current credentials; temporary ones carry their expiry. */
  credentials(): Promise<S3Credentials>;
};

export type S3Credentials = {
  accessKeyId: string;
  secretAccessKey: string;
  sessionToken?: string;
  expiration?: Date;
};

export const storageZones = ['landing', 'lake', 'results'] as const;
export type StorageZone = (typeof storageZones)[number];

/**
 * Where an engine finds a folder of objects (a zone, an upload's): a directory on local disk,
 * a prefix on S3 (ending in a slash, so that no other prefix that begins alike is taken for it).
 */
export function folderLocation(store: ObjectStore, folder: string): string {
  const location = store.locate(folder);
  return store.kind === 'local' ? location : `${location}/`;
}
