import { randomUUID } from 'node:crypto';
import { readdir, rename, rm } from 'node:fs/promises';
import path from 'node:path';
import { AppError } from '../../errors.ts';
import { releaseFileName } from '../../ingest/lake-keys.ts';

/**
 * Spark writes a folder of part files; the service wants one file at `target`. Spark writes one
 * part into a folder beside the target, which is then moved into place. The target is a path
 * both Spark and medlake see: the local disk of a one-machine Spark here, shared storage (S3,
 * issue 8) on a cluster.
 */
export async function writeOneFile(target: string, write: (directory: string) => Promise<void>) {
  sparkPath(target);
  const directory = `${target}.spark-${randomUUID()}`;
  try {
    await write(directory);
    const parts = (await readdir(directory)).filter((name) => name.startsWith('part-'));
    if (parts.length !== 1) {
      throw new AppError(
        'INTERNAL',
        `Spark wrote ${parts.length} part files where one was asked for`,
      );
    }
    await rename(path.join(directory, parts[0]!), target);
  } finally {
    await rm(directory, { recursive: true, force: true });
  }
}

/**
 * A path as Spark SQL text: only paths medlake made itself (absolute, of plain characters) are
 * written into a statement, since Spark takes file paths only as SQL text.
 */
export function sparkPath(location: string): string {
  if (!path.isAbsolute(location) || !/^[A-Za-z0-9/_.=-]+$/.test(location)) {
    throw new AppError(
      'INTERNAL',
      'Spark reads and writes local paths only until the S3 store (issue 8) is there',
    );
  }
  return location;
}

/**
 * Renames the part files Spark wrote into a directory to the lake's names (part-0.parquet, …)
 * and removes its markers and checksums. Returns the names, in order.
 */
export async function nameParquetParts(directory: string): Promise<string[]> {
  const entries = (await readdir(directory)).sort();
  const parts = entries.filter((name) => name.startsWith('part-') && name.endsWith('.parquet'));
  const names: string[] = [];
  for (const [index, part] of parts.entries()) {
    const name = releaseFileName(index);
    await rename(path.join(directory, part), path.join(directory, `${name}.tmp`));
    names.push(name);
  }
  for (const entry of entries) {
    if (!parts.includes(entry)) await rm(path.join(directory, entry), { force: true });
  }
  for (const name of names) {
    await rename(path.join(directory, `${name}.tmp`), path.join(directory, name));
  }
  return names;
}
