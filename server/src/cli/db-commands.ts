import type { Command } from 'commander';
import { listMigrations, migrateToLatest, rollbackLatest } from '../catalog/migrate.ts';
import type { Env } from '../env.ts';
import { openLockedCatalog } from '../platform.ts';
import type { Catalog } from '../catalog/catalog.ts';
import { runCommand } from './run-command.ts';

export function registerDbCommands(program: Command): void {
  const db = program.command('db').description('manage the metadata catalog database');

  db.command('migrate')
    .description('apply every pending catalog migration')
    .action(() =>
      runCommand((env) =>
        withCatalog(env, async (catalog) => {
          const applied = await migrateToLatest(catalog.db, (name) =>
            console.error(`applying ${name}`),
          );
          if (applied.length === 0) console.log('The catalog is up to date.');
          for (const name of applied) console.log(`applied ${name}`);
        }),
      ),
    );

  db.command('rollback')
    .description('revert the most recently applied catalog migration')
    .action(() =>
      runCommand((env) =>
        withCatalog(env, async (catalog) => {
          const reverted = await rollbackLatest(catalog.db);
          if (reverted.length === 0) console.log('No migration to revert.');
          for (const name of reverted) console.log(`reverted ${name}`);
        }),
      ),
    );

  db.command('status')
    .description('list the catalog migrations and whether each is applied')
    .action(() =>
      runCommand((env) =>
        withCatalog(env, async (catalog) => {
          for (const migration of await listMigrations(catalog.db)) {
            const state = migration.appliedAt
              ? `applied ${migration.appliedAt.toISOString()}`
              : 'pending';
            console.log(`${migration.name}  ${state}`);
          }
        }),
      ),
    );
}

async function withCatalog(env: Env, work: (catalog: Catalog) => Promise<void>): Promise<void> {
  const catalog = await openLockedCatalog(env);
  try {
    await work(catalog);
  } finally {
    await catalog.close();
  }
}
