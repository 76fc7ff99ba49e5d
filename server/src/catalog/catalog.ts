import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import { PGlite } from '@electric-sql/pglite';
import { Kysely, PGliteDialect, PostgresDialect, sql } from 'kysely';
import pg from 'pg';
import { describeDatabaseUrl } from '../env.ts';
import { UnavailableError } from '../errors.ts';
import { CatalogWrites, HeldReads, withRollbacksNoted } from './held-reads.ts';
import type { CatalogSchema } from './schema.ts';

export type CatalogDb = Kysely<CatalogSchema>;

export type CatalogKind = 'pglite' | 'postgres';

export type Catalog = {
  readonly kind: CatalogKind;
  readonly db: CatalogDb;
  /**
   * Read-mostly facts held in memory, dropped by the writes that change them: only where this
   * process owns the catalog (PGlite). Undefined on PostgreSQL, which other servers write too.
   */
  readonly held?: HeldReads;
  /**
   * The whole database as a gzipped tarball, for PGlite; PostgreSQL is backed up by its own
   * tools (pg_dump, a provider's snapshots).
   */
  dumpDataDir?(): Promise<Blob>;
  close(): Promise<void>;
};

export type CatalogLocation = { databaseUrl: string } | { directory: string };

/** Makes a PGlite catalog in an empty directory from a tarball that dumpDataDir wrote. */
export async function restorePglite(directory: string, dump: Blob): Promise<void> {
  await mkdir(path.dirname(directory), { recursive: true });
  const pglite = await PGlite.create(directory, { loadDataDir: dump });
  await pglite.close();
}

/**
 * Opens the metadata catalog: PostgreSQL when a URL is given, otherwise PGlite on disk. Both
 * speak the same SQL, so every repository and migration runs unchanged on either. Fails with an
 * UnavailableError (host and database named, no password) when the database cannot be reached.
 */
export async function openCatalog(location: CatalogLocation): Promise<Catalog> {
  const catalog =
    'databaseUrl' in location
      ? openPostgres(location.databaseUrl)
      : await openPglite(location.directory);
  try {
    await sql`select 1`.execute(catalog.db);
  } catch (error) {
    await catalog.close().catch(() => undefined);
    const where =
      'databaseUrl' in location ? describeDatabaseUrl(location.databaseUrl) : location.directory;
    throw new UnavailableError(
      'catalog_unavailable',
      `Cannot open the catalog database at ${where}: ${reason(error)}`,
    );
  }
  return catalog;
}

function openPostgres(databaseUrl: string): Catalog {
  const pool = new pg.Pool({ connectionString: databaseUrl, connectionTimeoutMillis: 10_000 });
  // An idle client that loses its connection emits an error; without a listener Node would
  // crash the process. The next query reports the failure instead.
  pool.on('error', () => undefined);
  const db = new Kysely<CatalogSchema>({ dialect: new PostgresDialect({ pool }) });
  return { kind: 'postgres', db, close: () => db.destroy() };
}

async function openPglite(directory: string): Promise<Catalog> {
  await mkdir(path.dirname(directory), { recursive: true });
  const pglite = await PGlite.create(directory);
  // Every statement goes through this Kysely, which is how held facts learn of the writes; its
  // driver tells them of rollbacks, which undo writes that a read inside may have seen.
  const writes = new CatalogWrites();
  const db = new Kysely<CatalogSchema>({
    dialect: withRollbacksNoted(new PGliteDialect({ pglite }), writes),
    plugins: [writes],
  });
  return {
    kind: 'pglite',
    db,
    held: new HeldReads(writes),
    dumpDataDir: async () => (await pglite.dumpDataDir('gzip')) as Blob,
    close: () => db.destroy(),
  };
}

function reason(error: unknown): string {
  if (error instanceof AggregateError && error.errors.length > 0) return reason(error.errors[0]);
  if (error instanceof Error) {
    const code = (error as NodeJS.ErrnoException).code;
    return code && !error.message.includes(code) ? `${error.message} (${code})` : error.message;
  }
  return String(error);
}
