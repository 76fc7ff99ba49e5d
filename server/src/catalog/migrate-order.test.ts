import { sql } from 'kysely';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  catalogBackends,
  createTestCatalog,
  type TestCatalog,
} from '../../test/catalog-backends.ts';
import { listMigrations, migrateToLatest } from './migrate.ts';
import { migrations } from './migrations/index.ts';

/**
 * Migrations of one day are named by letters handed out as work starts, and land in the order
 * the work ends: a catalog that applied a later letter first must still take an earlier one.
 */
describe.each(catalogBackends())('migrations landing out of order on %s', (kind) => {
  let catalog: TestCatalog;

  beforeEach(async () => {
    catalog = await createTestCatalog(kind);
  });

  afterEach(async () => {
    await catalog.dispose();
  });

  it('applies a migration named before one already applied', async () => {
    const names = Object.keys(migrations);
    const earlier = '2026-12-06d-create-release-files';
    expect(names.indexOf(earlier)).toBeLessThan(names.length - 1);
    await migrateToLatest(catalog.db);
    // The catalog as it was before the earlier migration landed: without it, the later applied.
    await migrations[earlier]?.down?.(catalog.db as never);
    await sql`DELETE FROM catalog_migrations WHERE name = ${earlier}`.execute(catalog.db);

    expect(await migrateToLatest(catalog.db)).toEqual([earlier]);
    const status = await listMigrations(catalog.db);
    expect(status.every((migration) => migration.appliedAt instanceof Date)).toBe(true);
    await sql`SELECT release_id, file, codes FROM release_files`.execute(catalog.db);
  });
});
