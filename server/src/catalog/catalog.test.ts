import { sql } from 'kysely';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  catalogBackends,
  createTestCatalog,
  createTestDatabase,
  type TestCatalog,
} from '../../test/catalog-backends.ts';
import { openCatalog } from './catalog.ts';
import { metaRepository } from './meta-repository.ts';
import { listMigrations, migrateToLatest, rollbackLatest } from './migrate.ts';
import { migrations } from './migrations/index.ts';

describe.each(catalogBackends())('catalog on %s', (kind) => {
  let catalog: TestCatalog;

  beforeEach(async () => {
    catalog = await createTestCatalog(kind);
  });

  afterEach(async () => {
    await catalog.dispose();
  });

  it('reports which backend it runs on', () => {
    expect(catalog.kind).toBe(kind);
  });

  it('applies every migration once, in order, and records them', async () => {
    const names = Object.keys(migrations);
    expect(await migrateToLatest(catalog.db)).toEqual(names);
    expect(await migrateToLatest(catalog.db)).toEqual([]);

    const status = await listMigrations(catalog.db);
    expect(status.map((migration) => migration.name)).toEqual(names);
    expect(status.every((migration) => migration.appliedAt instanceof Date)).toBe(true);
  });

  it('rolls the latest migration back and re-applies it', async () => {
    await migrateToLatest(catalog.db);
    const latest = Object.keys(migrations).at(-1);
    expect(await rollbackLatest(catalog.db)).toEqual([latest]);
    expect((await listMigrations(catalog.db)).at(-1)?.appliedAt).toBeNull();
    expect(await migrateToLatest(catalog.db)).toEqual([latest]);
  });

  it('creates the meta table with the columns the repository expects', async () => {
    await migrateToLatest(catalog.db);
    const columns = await sql<{ column_name: string; data_type: string }>`
      select column_name, data_type from information_schema.columns
      where table_name = 'meta' order by ordinal_position`.execute(catalog.db);
    expect(columns.rows).toEqual([
      { column_name: 'key', data_type: 'text' },
      { column_name: 'value', data_type: 'jsonb' },
      { column_name: 'updated_at', data_type: 'timestamp with time zone' },
    ]);
  });

  it('keeps its data when the catalog is closed and opened again', async () => {
    const database = await createTestDatabase(kind);
    try {
      const first = await openCatalog(database.location);
      await migrateToLatest(first.db);
      await metaRepository(first.db).set('survives', true);
      await first.close();

      const reopened = await openCatalog(database.location);
      try {
        expect(await metaRepository(reopened.db).get('survives')).toBe(true);
        expect(await migrateToLatest(reopened.db)).toEqual([]);
      } finally {
        await reopened.close();
      }
    } finally {
      await database.dispose();
    }
  });

  describe('meta repository', () => {
    beforeEach(async () => {
      await migrateToLatest(catalog.db);
    });

    it('stores, overwrites and deletes JSON values by key', async () => {
      const meta = metaRepository(catalog.db);
      expect(await meta.get('answer')).toBeUndefined();

      await meta.set('answer', { value: 42, tags: ['a'] });
      expect(await meta.get('answer')).toEqual({ value: 42, tags: ['a'] });

      await meta.set('answer', 'changed');
      expect(await meta.get('answer')).toBe('changed');

      expect(await meta.delete('answer')).toBe(true);
      expect(await meta.delete('answer')).toBe(false);
      expect(await meta.get('answer')).toBeUndefined();
    });

    it('getOrCreate keeps the first value it stored', async () => {
      const meta = metaRepository(catalog.db);
      expect(await meta.getOrCreate('installation', () => 'first')).toBe('first');
      expect(await meta.getOrCreate('installation', () => 'second')).toBe('first');
    });
  });
});

describe('opening a catalog that cannot be reached', () => {
  it('names the host and database, and never the password', async () => {
    const error = await openCatalog({
      databaseUrl: 'postgres://medlake:s3cret@nowhere.invalid:1/catalog',
    }).catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(Error);
    const message = (error as Error).message;
    expect(message).toContain('postgres://nowhere.invalid:1/catalog');
    expect(message).not.toContain('s3cret');
  });
});
