import { randomUUID } from 'node:crypto';
import path from 'node:path';
import { AppError } from '../../errors.ts';
import { releaseFileName } from '../../ingest/lake-keys.ts';
import type { ObjectStore } from '../../storage/object-store.ts';

/**
 * Spark writes a folder of part files; the service wants one object at `target`. Spark writes
 * one part into a folder beside the target, which the store then moves into place (a rename
 * on local disk, a copy inside the bucket on S3) before the folder and its markers go.
 */
export async function writeOneFile(
  store: ObjectStore,
  target: string,
  write: (directory: string) => Promise<unknown>,
): Promise<void> {
  const targetKey = store.keyOf(target);
  if (!targetKey) throw new AppError('internal', 'Spark writes only into the object store');
  const folder = `${targetKey}.spark-${randomUUID()}`;
  try {
    await write(sparkPath(store.locate(folder)));
    const parts = partsIn(await store.list(`${folder}/`), folder, '');
    if (parts.length !== 1) {
      throw new AppError(
        'internal',
        `Spark wrote ${parts.length} part files where one was asked for`,
      );
    }
    await store.move(parts[0]!, targetKey);
  } finally {
    await store.deleteFolder(folder);
  }
}

/**
 * Lets Spark write a release's Parquet files into a folder of its own inside the release
 * folder, then moves them up under the lake's names (part-0.parquet, …) and drops the rest
 * (markers, checksums). Returns the names, in order.
 */
export async function writeReleaseFiles(
  store: ObjectStore,
  folder: string,
  write: (directory: string) => Promise<unknown>,
): Promise<string[]> {
  const staging = `${folder}/spark-${randomUUID()}`;
  try {
    await write(sparkPath(store.locate(staging)));
    const parts = partsIn(await store.list(`${staging}/`), staging, '.parquet');
    const names: string[] = [];
    for (const [index, part] of parts.entries()) {
      const name = releaseFileName(index);
      await store.move(part, `${folder}/${name}`);
      names.push(name);
    }
    return names;
  } finally {
    await store.deleteFolder(staging);
  }
}

/** The keys of the part files Spark wrote directly into a folder, in Spark's order. */
function partsIn(keys: readonly string[], folder: string, extension: string): string[] {
  return keys
    .filter((key) => {
      const name = key.slice(folder.length + 1);
      return !name.includes('/') && name.startsWith('part-') && name.endsWith(extension);
    })
    .sort();
}

/** A local path Spark may be given: absolute, of plain characters. */
const localPath = /^\/[A-Za-z0-9/_.=-]*$/;
/** An S3 URL Spark may be given: a bucket name, then plain characters. */
const s3Url = /^s3a:\/\/[a-z0-9][a-z0-9.-]*[a-z0-9]\/[A-Za-z0-9/_.=-]*$/;

/**
 * A location as Spark SQL text: a local path, or an object on S3 through Hadoop's S3A file
 * system (`s3://` becomes `s3a://`). Only locations medlake made itself, of plain characters,
 * are written into a statement, since Spark takes file paths only as SQL text. A trailing
 * `*.parquet` glob (a release folder's files) is kept.
 */
export function sparkPath(location: string): string {
  const glob = location.endsWith('/*.parquet') ? '/*.parquet' : '';
  const plain = location.slice(0, location.length - glob.length);
  const spark = plain.startsWith('s3://') ? `s3a://${plain.slice('s3://'.length)}` : plain;
  const valid = spark.startsWith('s3a://')
    ? s3Url.test(spark)
    : path.isAbsolute(spark) && localPath.test(spark);
  if (!valid) {
    throw new AppError('internal', 'A lake location holds characters Spark SQL would misread');
  }
  return `${spark}${glob}`;
}
