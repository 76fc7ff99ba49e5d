import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { chmod, mkdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';

/** Reads a key the embedded default generated earlier: 64 hex digits. */
export async function readKeyFile(file: string): Promise<Buffer> {
  return Buffer.from((await readFile(file, 'utf8')).trim(), 'hex');
}

/**
 * Generates a 32-byte key into a new file readable by its owner alone, in a directory only its
 * owner may enter. When another process made the file first, its key is the one returned.
 */
export async function createKeyFile(file: string): Promise<Buffer> {
  await mkdir(path.dirname(file), { recursive: true, mode: 0o700 });
  try {
    await writeFile(file, `${randomBytes(32).toString('hex')}\n`, { mode: 0o600, flag: 'wx' });
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
  }
  await chmod(file, 0o600);
  return readKeyFile(file);
}

/**
 * A signing key: the configured secret when there is one (several servers must share it), else
 * the one the embedded default generated once into `file`.
 */
export async function resolveSigningKey(
  configured: string | undefined,
  file: string,
): Promise<Buffer> {
  if (configured !== undefined) return Buffer.from(configured, 'utf8');
  return existsSync(file) ? readKeyFile(file) : createKeyFile(file);
}
