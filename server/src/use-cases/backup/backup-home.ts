import { createHash } from 'node:crypto';
import { createReadStream, createWriteStream, existsSync } from 'node:fs';
import { copyFile, mkdir, readdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { Actor } from '../../audit/audit-log.ts';
import { restorePglite } from '../../catalog/catalog.ts';
import type { Env } from '../../env.ts';
import { AppError } from '../../errors.ts';
import { homeLayout } from '../../home-layout.ts';
import { openPlatform, type Platform } from '../../platform.ts';
import { openConfiguredVault } from '../../vault/configured-vault.ts';
import { version } from '../../version.ts';

const format = 'medlake-backup/1';
const vaultKeyFile = 'vault.key';

export type BackupManifest = {
  format: typeof format;
  createdAt: string;
  version: string;
  /** Every object of the lake and the results, with its size and SHA-256. */
  objects: Array<{ key: string; bytes: number; sha256: string }>;
  /** The server's own keys (download links, audit chain, TOTP secrets, privacy): never the vault's. */
  keys: string[];
};

/**
 * Backs up a home: the catalog (PGlite's whole database), the lake and results objects, and
 * the server's keys into one folder; the vault, which maps pseudonyms back to people, and its
 * key into another, which must be elsewhere. Raw uploads still in the landing zone are left
 * out: they hold real identifiers and are sent again if lost. The manifest is written last, so
 * a folder without one is an unfinished backup.
 */
export async function backupHome(
  platform: Platform,
  actor: Actor,
  destinations: { to: string; vaultTo: string },
): Promise<BackupManifest> {
  refuseBesideVaultService(platform.env);
  const to = path.resolve(destinations.to);
  const vaultTo = path.resolve(destinations.vaultTo);
  if (!platform.catalog.dumpDataDir) {
    throw new AppError(
      'backup_refused',
      'The catalog is on PostgreSQL: back it up with pg_dump or your provider’s snapshots, and restore it before `medlake restore`',
    );
  }
  if (to === vaultTo || isInside(vaultTo, to) || isInside(to, vaultTo)) {
    throw new AppError('invalid_input', 'The vault’s backup must go to a folder of its own');
  }
  await assertEmptyFolder(to);
  await assertEmptyFolder(vaultTo);
  await platform.audit.record({
    action: 'backup.create',
    actor,
    target: 'home',
    details: { to, vaultTo },
  });

  await mkdir(to, { recursive: true, mode: 0o700 });
  await writeFile(
    path.join(to, 'catalog.tar.gz'),
    Buffer.from(await (await platform.catalog.dumpDataDir()).arrayBuffer()),
    { mode: 0o600 },
  );
  const objects: BackupManifest['objects'] = [];
  for (const prefix of ['lake/', 'results/']) {
    for (const key of await platform.store.list(prefix)) {
      const file = path.join(to, 'objects', ...key.split('/'));
      await mkdir(path.dirname(file), { recursive: true });
      const hash = createHash('sha256');
      let bytes = 0;
      await pipeline(
        await platform.store.get(key),
        new Transform({
          transform(chunk: Buffer, _encoding, done) {
            hash.update(chunk);
            bytes += chunk.length;
            done(null, chunk);
          },
        }),
        createWriteStream(file, { mode: 0o600 }),
      );
      objects.push({ key, bytes, sha256: hash.digest('hex') });
    }
  }
  const keys = (await readdir(platform.layout.keys).catch(() => [])).filter(
    (name) => name !== vaultKeyFile,
  );
  await mkdir(path.join(to, 'keys'), { recursive: true, mode: 0o700 });
  for (const name of keys) {
    await copyFile(path.join(platform.layout.keys, name), path.join(to, 'keys', name));
  }

  await mkdir(vaultTo, { recursive: true, mode: 0o700 });
  const vault = await openConfiguredVault(platform.env);
  try {
    vault.copyTo(path.join(vaultTo, 'vault.sqlite'));
  } finally {
    vault.close();
  }
  const generatedVaultKey = path.join(platform.layout.keys, vaultKeyFile);
  if (existsSync(generatedVaultKey)) {
    await copyFile(generatedVaultKey, path.join(vaultTo, vaultKeyFile));
  }

  const manifest: BackupManifest = {
    format,
    createdAt: new Date().toISOString(),
    version,
    objects,
    keys,
  };
  await writeFile(path.join(to, 'manifest.json'), `${JSON.stringify(manifest, null, 2)}\n`);
  return manifest;
}

/**
 * Restores a backup onto a home that holds no catalog yet: the catalog, the keys, the vault
 * (from its own folder), then every object, each checked against its SHA-256 before it is put.
 */
export async function restoreHome(
  env: Env,
  actor: Actor,
  sources: { from: string; vaultFrom: string },
): Promise<BackupManifest> {
  const from = path.resolve(sources.from);
  const vaultFrom = path.resolve(sources.vaultFrom);
  refuseBesideVaultService(env);
  const manifest = JSON.parse(
    await readFile(path.join(from, 'manifest.json'), 'utf8').catch(() => {
      throw new AppError(
        'file_not_found',
        `${from} holds no finished medlake backup (no manifest.json)`,
      );
    }),
  ) as BackupManifest;
  if (manifest.format !== format) {
    throw new AppError('invalid_input', `${from} is not a backup this medlake can read`);
  }
  const layout = homeLayout(env.MEDLAKE_HOME);
  if (existsSync(layout.catalog) || existsSync(path.join(env.MEDLAKE_VAULT_DIR, 'vault.sqlite'))) {
    throw new AppError(
      'backup_refused',
      `${env.MEDLAKE_HOME} already holds a catalog or a vault: restore onto an empty home`,
    );
  }

  await restorePglite(
    layout.catalog,
    new Blob([await readFile(path.join(from, 'catalog.tar.gz'))]),
  );
  await mkdir(layout.keys, { recursive: true, mode: 0o700 });
  for (const name of manifest.keys) {
    await copyFile(path.join(from, 'keys', name), path.join(layout.keys, name));
  }
  await mkdir(env.MEDLAKE_VAULT_DIR, { recursive: true, mode: 0o700 });
  await copyFile(
    path.join(vaultFrom, 'vault.sqlite'),
    path.join(env.MEDLAKE_VAULT_DIR, 'vault.sqlite'),
  );
  if (existsSync(path.join(vaultFrom, vaultKeyFile))) {
    await copyFile(path.join(vaultFrom, vaultKeyFile), path.join(layout.keys, vaultKeyFile));
  }

  const platform = await openPlatform(env, { migrate: true });
  try {
    for (const object of manifest.objects) {
      const file = path.join(from, 'objects', ...object.key.split('/'));
      const hash = createHash('sha256');
      await pipeline(createReadStream(file), hash);
      if (hash.digest('hex') !== object.sha256) {
        throw new AppError('invalid_input', `The backup's copy of ${object.key} is damaged`);
      }
      await platform.store.putFile(object.key, file);
    }
    await platform.audit.record({
      action: 'backup.restore',
      actor,
      target: 'home',
      details: { from, vaultFrom, objects: manifest.objects.length, backupOf: manifest.createdAt },
    });
  } finally {
    await platform.close();
  }
  return manifest;
}

function isInside(child: string, parent: string): boolean {
  const relative = path.relative(parent, child);
  return relative !== '' && !relative.startsWith('..') && !path.isAbsolute(relative);
}

async function assertEmptyFolder(folder: string): Promise<void> {
  const entries = await readdir(folder).catch(() => []);
  if (entries.length > 0) {
    throw new AppError('backup_refused', `${folder} is not empty: back up into a new folder`);
  }
}

/**
 * With a vault service, this host has no vault to copy and must not get one: the vault is
 * backed up and restored on its own host (docs/operations/vault.md).
 */
function refuseBesideVaultService(env: Env): void {
  if (!env.MEDLAKE_VAULT_URL) return;
  throw new AppError(
    'backup_refused',
    `This server uses the vault service at ${env.MEDLAKE_VAULT_URL}: back the vault up on its host (\`medlake vault backup\`, docs/operations/vault.md); this command backs up a home that holds its vault`,
  );
}
