import { cp, mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { datasetContractSchema, type DatasetContract } from '@medlake/shared';
import {
  openCatalog,
  type Catalog,
  type CatalogKind,
  type CatalogLocation,
} from '../src/catalog/catalog.ts';
import { datasetsRepository } from '../src/catalog/datasets-repository.ts';
import { migrateToLatest } from '../src/catalog/migrate.ts';

/**
 * The catalog backends the suite runs on. PGlite always; PostgreSQL when the test services
 * script has started one and named it in MEDLAKE_TEST_POSTGRES_URL. `npm run test:all` sets
 * MEDLAKE_TEST_REQUIRE_POSTGRES so that a missing server fails the run instead of shrinking it.
 */
export function catalogBackends(): CatalogKind[] {
  if (process.env.MEDLAKE_TEST_POSTGRES_URL) return ['pglite', 'postgres'];
  if (process.env.MEDLAKE_TEST_REQUIRE_POSTGRES) {
    throw new Error('MEDLAKE_TEST_REQUIRE_POSTGRES is set but MEDLAKE_TEST_POSTGRES_URL is not');
  }
  return ['pglite'];
}

export type TestDatabase = {
  /** Where the catalog lives: a fresh PGlite directory or a fresh PostgreSQL database. */
  location: CatalogLocation;
  /** Deletes the directory or drops the database. Close every handle on it first. */
  dispose(): Promise<void>;
};

/**
 * Puts a new, empty PGlite database at `directory`. Creating one runs initdb, which takes
 * seconds; copying the empty one that the global setup made takes a fraction of that.
 */
export async function copyEmptyPglite(directory: string): Promise<void> {
  const template = process.env.MEDLAKE_TEST_PGLITE_TEMPLATE;
  if (!template)
    throw new Error('MEDLAKE_TEST_PGLITE_TEMPLATE is not set: run the tests through vitest');
  await cp(template, directory, { recursive: true });
}

/** Makes room for a new, empty catalog of the given kind, without opening it. */
export async function createTestDatabase(kind: CatalogKind): Promise<TestDatabase> {
  if (kind === 'pglite') {
    const home = await mkdtemp(path.join(tmpdir(), 'medlake-catalog-'));
    const directory = path.join(home, 'catalog');
    await copyEmptyPglite(directory);
    return {
      location: { directory },
      dispose: () => rm(home, { recursive: true, force: true }),
    };
  }

  const adminUrl = process.env.MEDLAKE_TEST_POSTGRES_URL;
  if (!adminUrl) throw new Error('MEDLAKE_TEST_POSTGRES_URL is not set');
  const name = `medlake_test_${process.pid}_${Math.random().toString(36).slice(2, 10)}`;
  await withAdmin(adminUrl, (client) => client.query(`create database ${name}`));
  const url = new URL(adminUrl);
  url.pathname = `/${name}`;
  return {
    location: { databaseUrl: url.toString() },
    dispose: async () => {
      await withAdmin(adminUrl, (client) => client.query(`drop database if exists ${name}`));
    },
  };
}

export type TestCatalog = Catalog & TestDatabase;

/** A new, empty, open catalog of the given kind, not yet migrated. */
export async function createTestCatalog(kind: CatalogKind): Promise<TestCatalog> {
  const database = await createTestDatabase(kind);
  const catalog = await openCatalog(database.location);
  return {
    ...catalog,
    location: database.location,
    dispose: async () => {
      await catalog.close();
      await database.dispose();
    },
  };
}

/** The lab-results contract the product ships (server/config/contracts), parsed. */
export async function shippedLabResults(): Promise<DatasetContract> {
  const file = new URL('../config/contracts/lab-results.json', import.meta.url);
  return datasetContractSchema.parse(JSON.parse(await readFile(file, 'utf8')));
}

/**
 * A new, open catalog of the given kind, migrated, with the shipped lab-results contract saved
 * as the dataset `lab-results`, and again under each name of `alsoAs`.
 */
export async function createLabResultsCatalog(
  kind: CatalogKind,
  options: { alsoAs?: readonly string[] } = {},
): Promise<TestCatalog> {
  const catalog = await createTestCatalog(kind);
  try {
    await migrateToLatest(catalog.db);
    const shipped = await shippedLabResults();
    for (const name of [shipped.name, ...(options.alsoAs ?? [])]) {
      await datasetsRepository(catalog.db).create({ ...shipped, name });
    }
    return catalog;
  } catch (error) {
    await catalog.dispose();
    throw error;
  }
}

async function withAdmin<T>(adminUrl: string, work: (client: pg.Client) => Promise<T>) {
  const client = new pg.Client({ connectionString: adminUrl });
  await client.connect();
  try {
    return await work(client);
  } finally {
    await client.end();
  }
}
