import { Migrator, type MigrationResult } from 'kysely/migration';
import type { CatalogDb } from './catalog.ts';
import { migrations } from './migrations/index.ts';

export type MigrationStatus = { name: string; appliedAt: Date | null };

/**
 * The migrator, telling `onStart` the name of each migration as it begins (the CLI shows it, so
 * that a long migration shows where it is).
 */
function createMigrator(db: CatalogDb, onStart?: (name: string) => void): Migrator {
  const reported = Object.fromEntries(
    Object.entries(migrations).map(([name, migration]) => [
      name,
      {
        ...migration,
        up: async (on: Parameters<typeof migration.up>[0]) => {
          onStart?.(name);
          await migration.up(on);
        },
      },
    ]),
  );
  return new Migrator({
    db,
    provider: { getMigrations: async () => reported },
    migrationTableName: 'catalog_migrations',
    migrationLockTableName: 'catalog_migrations_lock',
    // Migrations of one day are named by letters handed out as work starts, and land in the
    // order the work ends: a catalog that applied 06f must still apply a 06d added after it.
    allowUnorderedMigrations: true,
  });
}

/** Applies every pending migration in one transaction; on failure none of them is applied. */
export async function migrateToLatest(
  db: CatalogDb,
  onStart?: (name: string) => void,
): Promise<string[]> {
  return applied(await createMigrator(db, onStart).migrateToLatest());
}

/** Reverts the most recently applied migration, if any. */
export async function rollbackLatest(db: CatalogDb): Promise<string[]> {
  return applied(await createMigrator(db).migrateDown());
}

export async function listMigrations(db: CatalogDb): Promise<MigrationStatus[]> {
  const all = await createMigrator(db).getMigrations();
  return all.map((migration) => ({
    name: migration.name,
    appliedAt: migration.executedAt ?? null,
  }));
}

function applied(outcome: { error?: unknown; results?: MigrationResult[] }): string[] {
  if (outcome.error !== undefined) {
    const failed = outcome.results?.find((result) => result.status === 'Error');
    const message = outcome.error instanceof Error ? outcome.error.message : String(outcome.error);
    throw new Error(
      failed
        ? `Migration ${failed.migrationName} failed: ${message}`
        : `Migration failed: ${message}`,
      { cause: outcome.error },
    );
  }
  return (outcome.results ?? [])
    .filter((result) => result.status === 'Success')
    .map((result) => result.migrationName);
}
