import { Migrator, type MigrationResult } from 'kysely/migration';
import type { CatalogDb } from './catalog.ts';
import { migrations } from './migrations/index.ts';

export type MigrationStatus = { name: string; appliedAt: Date | null };

function createMigrator(db: CatalogDb): Migrator {
  return new Migrator({
    db,
    provider: { getMigrations: async () => migrations },
    migrationTableName: 'catalog_migrations',
    migrationLockTableName: 'catalog_migrations_lock',
  });
}

/** Applies every pending migration in one transaction; on failure none of them is applied. */
export async function migrateToLatest(db: CatalogDb): Promise<string[]> {
  return applied(await createMigrator(db).migrateToLatest());
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
