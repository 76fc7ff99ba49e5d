import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { hostname } from 'node:os';
import path from 'node:path';
import lockfile from 'proper-lockfile';
import { openCatalog, type Catalog, type CatalogLocation } from './catalog/catalog.ts';
import { migrateToLatest } from './catalog/migrate.ts';
import { totpSecretBox, type TotpSecretBox } from './accounts/totp.ts';
import { openAuditCheckpoints, type AuditCheckpoints } from './audit/audit-checkpoints.ts';
import { auditLog, type AuditLog } from './audit/audit-log.ts';
import { createSignedDownloadLinks, type DownloadLinks } from './downloads/download-links.ts';
import { privacySecrets, type PrivacySecrets } from './privacy/privacy-secrets.ts';
import { createEngine } from './engines/registry.ts';
import type { Env } from './env.ts';
import { AppError } from './errors.ts';
import { homeLayout, type HomeLayout } from './home-layout.ts';
import { resolveSigningKey } from './key-file.ts';
import type { PlatformParts } from './platform-parts.ts';
import { folderLocation } from './storage/object-store.ts';
import { createObjectStore } from './storage/registry.ts';

/** Everything a use-case may need: the open catalog, engine and object store, and the rest. */
export type Platform = PlatformParts & {
  readonly env: Env;
  readonly layout: HomeLayout;
  readonly downloads: DownloadLinks;
  readonly audit: AuditLog;
  /** Signed notes of the audit chain's head, outside MEDLAKE_HOME. */
  readonly auditCheckpoints: AuditCheckpoints;
  readonly totpSecrets: TotpSecretBox;
  close(): Promise<void>;
};

export class HomeInUseError extends AppError {
  constructor(home: string) {
    super(
      'home_in_use',
      `MEDLAKE_HOME ${home} is in use by another medlake process (probably a running server). ` +
        'Stop that process first, or point this command at another MEDLAKE_HOME.',
    );
    this.name = 'HomeInUseError';
  }
}

export type OpenPlatformOptions = {
  /** Apply pending catalog migrations while opening (what `serve` does). */
  migrate?: boolean;
};

/**
 * Opens the platform's parts in order, taking the MEDLAKE_HOME lock first: PGlite and DuckDB
 * files belong to one process at a time, so a second process is refused with a clear message
 * instead of corrupting them. On any failure, whatever was opened is closed again.
 */
export async function openPlatform(env: Env, options: OpenPlatformOptions = {}): Promise<Platform> {
  const layout = homeLayout(env.MEDLAKE_HOME);
  const closers: Array<() => Promise<void>> = [];
  const closeAll = async () => {
    for (const close of closers.reverse()) await close().catch(() => undefined);
  };

  try {
    await mkdir(layout.home, { recursive: true });
    const release = await lockHome(layout.home);
    closers.push(release);

    const catalog = await openCatalog(catalogLocation(env, layout));
    closers.push(() => catalog.close());
    if (options.migrate) await migrateToLatest(catalog.db);

    const store = await createObjectStore(env, layout.objects);
    const engine = await createEngine(
      env,
      {
        allowedDirectories: [folderLocation(store, 'lake'), folderLocation(store, 'results')],
        tempDirectory: layout.engineTemp,
        memoryLimit: env.MEDLAKE_QUERY_MEMORY,
        // Running queries, plus room for pages, exports and health checks beside them.
        connections: env.MEDLAKE_QUERY_CONCURRENCY + 4,
        ...(store.engineAccess ? { s3: store.engineAccess } : {}),
      },
      store,
    );
    closers.push(() => engine.close());

    const downloads = createSignedDownloadLinks(
      await resolveSigningKey(env.MEDLAKE_DOWNLOAD_SECRET, path.join(layout.keys, 'download.key')),
      env.MEDLAKE_DOWNLOAD_TTL_SECONDS,
    );
    const audit = auditLog(
      catalog.db,
      await resolveSigningKey(env.MEDLAKE_AUDIT_SECRET, path.join(layout.keys, 'audit.key')),
      { oneTransactionAtATime: catalog.kind === 'pglite' },
    );
    const auditCheckpoints = await openAuditCheckpoints(env.MEDLAKE_AUDIT_CHECKPOINT_DIR);
    const noteHead = async () => {
      // Before migrations ran (a CLI command on a new catalog) there is no log to note yet.
      const head = await audit.head().catch(() => null);
      await auditCheckpoints.write(head);
    };
    await noteHead();
    // The head as it grows; and once more on the way out. unref: never what keeps a CLI alive.
    const checkpointTimer = setInterval(() => {
      noteHead().catch(() => undefined);
    }, env.MEDLAKE_AUDIT_CHECKPOINT_SECONDS * 1000);
    checkpointTimer.unref();
    closers.push(async () => {
      clearInterval(checkpointTimer);
      await noteHead();
    });

    const totpSecrets = totpSecretBox(
      await resolveSigningKey(env.MEDLAKE_ACCOUNTS_SECRET, path.join(layout.keys, 'accounts.key')),
    );

    return {
      env,
      layout,
      catalog,
      engine,
      store,
      downloads,
      audit,
      auditCheckpoints,
      totpSecrets,
      privacy: await openPrivacySecrets(env),
      close: closeAll,
    };
  } catch (error) {
    await closeAll();
    throw error;
  }
}

/**
 * Opens only the catalog, under the same MEDLAKE_HOME lock as the server, for CLI commands
 * such as `db migrate` that need nothing else.
 */
export async function openLockedCatalog(env: Env): Promise<Catalog> {
  const layout = homeLayout(env.MEDLAKE_HOME);
  await mkdir(layout.home, { recursive: true });
  const release = await lockHome(layout.home);
  try {
    const catalog = await openCatalog(catalogLocation(env, layout));
    return {
      ...catalog,
      close: async () => {
        await catalog.close();
        await release();
      },
    };
  } catch (error) {
    await release();
    throw error;
  }
}

function catalogLocation(env: Env, layout: HomeLayout): CatalogLocation {
  return env.DATABASE_URL ? { databaseUrl: env.DATABASE_URL } : { directory: layout.catalog };
}

async function lockHome(home: string): Promise<() => Promise<void>> {
  const lockPath = path.join(home, '.lock');
  const ownerFile = path.join(home, '.lock-owner');
  const take = async () => {
    // The lock is refreshed while the process lives and goes stale 15 s after it stops.
    const release = await lockfile.lock(home, { lockfilePath: lockPath, stale: 15_000 });
    await writeFile(ownerFile, JSON.stringify({ pid: process.pid, host: hostname() }));
    return async () => {
      await rm(ownerFile, { force: true });
      await release();
    };
  };
  try {
    return await take();
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ELOCKED') throw error;
    // A process killed with SIGKILL leaves its lock behind; when its owner is provably gone
    // (same host, no such process), take the lock over at once instead of waiting it out.
    if (!(await ownerIsGone(ownerFile))) throw new HomeInUseError(home);
    await rm(lockPath, { recursive: true, force: true });
    try {
      return await take();
    } catch (retryError) {
      if ((retryError as NodeJS.ErrnoException).code === 'ELOCKED') throw new HomeInUseError(home);
      throw retryError;
    }
  }
}

async function ownerIsGone(ownerFile: string): Promise<boolean> {
  let owner: { pid?: unknown; host?: unknown };
  try {
    owner = JSON.parse(await readFile(ownerFile, 'utf8')) as typeof owner;
  } catch {
    return false;
  }
  if (owner.host !== hostname() || typeof owner.pid !== 'number') return false;
  try {
    process.kill(owner.pid, 0);
    return false;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'ESRCH';
  }
}

/** The privacy controls' secrets, from the configured key or the embedded default's key file. */
export async function openPrivacySecrets(env: Env): Promise<PrivacySecrets> {
  return privacySecrets(
    await resolveSigningKey(
      env.MEDLAKE_PRIVACY_SECRET,
      path.join(homeLayout(env.MEDLAKE_HOME).keys, 'privacy.key'),
    ),
  );
}
