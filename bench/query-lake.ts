// Builds the lake bench/query.ts runs on: a MEDLAKE_HOME with the lab-results dataset, its
// synthetic releases (server/test/synthetic-lake.ts), and a researcher with a token.
import { readFile, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { querySpecSchema } from '@medlake/shared';
import { datasetsRepository } from '../server/src/catalog/datasets-repository.ts';
import { loadEnv } from '../server/src/env.ts';
import { publishSyntheticLabResults } from '../server/test/synthetic-lake.ts';
import { openPlatform } from '../server/src/platform.ts';
import { planAndCompile } from '../server/src/use-cases/queries/run-query-job.ts';
import { queryColumns } from '../server/src/query/query-columns.ts';
import { aggregateStatement } from '../server/src/query/run-aggregate.ts';
import { inlineParameters } from '../server/src/engines/duckdb/inline-parameters.ts';
import {
  addUser,
  createApiToken,
  grantDatasetAccess,
} from '../server/src/use-cases/manage-access.ts';
import { saveDataset } from '../server/src/use-cases/manage-datasets.ts';

const benchActor = { userId: null, name: 'bench', source: 'bench' };

export type BenchLake = { home: string; token: string; lakeGlob: string };

export async function buildQueryLake(
  home: string,
  options: { hospitals: number; months: number; rowsPerRelease: number },
): Promise<BenchLake> {
  const tokenFile = path.join(home, 'bench-token.txt');
  const lakeGlob = path.join(home, 'objects', 'lake', 'lab-results', '**', '*.parquet');
  try {
    return { home, token: (await readFile(tokenFile, 'utf8')).trim(), lakeGlob };
  } catch {
    // Not built, or a build broke off: start again from nothing.
    await rm(home, { recursive: true, force: true });
  }
  const platform = await openPlatform(loadEnv({ MEDLAKE_HOME: home, LOG_LEVEL: 'silent' }), {
    migrate: true,
  });
  try {
    const contractFile = new URL('../server/config/contracts/lab-results.json', import.meta.url);
    const dataset = await saveDataset(platform, JSON.parse(await readFile(contractFile, 'utf8')));
    await publishSyntheticLabResults(platform, dataset, options, () => process.stdout.write('.'));
    console.log('');
    await addUser(platform, benchActor, {
      email: 'bench@example.org',
      name: 'Bench',
      role: 'researcher',
    });
    await grantDatasetAccess(platform, benchActor, {
      email: 'bench@example.org',
      datasetId: dataset.id,
      level: 'aggregate',
    });
    const { token } = await createApiToken(platform, benchActor, {
      email: 'bench@example.org',
      name: 'bench',
      days: 30,
    });
    await writeFile(tokenFile, `${token}\n`, { mode: 0o600 });
    return { home, token, lakeGlob };
  } finally {
    await platform.close();
  }
}

/**
 * A token of a second researcher with row-level access to the bench lake, made on first use
 * (lakes built before it have only the aggregate user). Row-level users get aggregate figures
 * as computed, without the aggregate checks (disclosure control, the release ledger, the
 * percentile bound): the same service without them, so the two users' times give the checks'
 * own cost.
 */
export async function rowLevelToken(home: string): Promise<string> {
  const tokenFile = path.join(home, 'bench-row-token.txt');
  const existing = await readFile(tokenFile, 'utf8').catch(() => undefined);
  if (existing) return existing.trim();
  const platform = await openPlatform(loadEnv({ MEDLAKE_HOME: home, LOG_LEVEL: 'silent' }));
  try {
    const email = 'bench-row@example.org';
    await addUser(platform, benchActor, { email, name: 'Bench (row level)', role: 'researcher' });
    await grantDatasetAccess(platform, benchActor, {
      email,
      datasetId: 'lab-results',
      level: 'row',
    });
    const { token } = await createApiToken(platform, benchActor, {
      email,
      name: 'bench',
      days: 30,
    });
    await writeFile(tokenFile, `${token}\n`, { mode: 0o600 });
    return token;
  } finally {
    await platform.close();
  }
}

/**
 * The statement medlake's query service would run for each spec, as its worker builds it
 * (planAndCompile: the catalog's releases, the planner, the compiler) with the cap on groups,
 * for the engine the extra settings name (DuckDB by default). Empties the bench home's release
 * ledger first, as every run of a benchmark starts from none.
 */
export async function compileForBench(
  home: string,
  specs: object[],
  env: Record<string, string> = {},
): Promise<Array<{ sql: string; params: unknown[] }>> {
  const platform = await openPlatform(loadEnv({ ...env, MEDLAKE_HOME: home, LOG_LEVEL: 'silent' }));
  try {
    const dataset = await datasetsRepository(platform.catalog.db).get('lab-results');
    if (!dataset) throw new Error('the bench lake has no lab-results dataset');
    // Every run starts from an empty release ledger (the bench home's, the bench user's only),
    // so that the figures do not depend on how many runs came before: each result is checked
    // against the earlier ones.
    await platform.catalog.db.deleteFrom('released_cells').execute();
    const statements = [];
    for (const input of specs) {
      const { compiled } = await planAndCompile(
        platform,
        querySpecSchema.parse({ dataset: dataset.id, ...input }),
        { level: 'aggregate', hospitals: null, holder: 'user:bench' },
        queryColumns(dataset.contract),
        // As the server compiles it for an aggregate user (run-query-job.ts): with the columns
        // disclosure control reads, so that "the same SQL" is the very statement the API runs.
        { minGroupPatients: dataset.contract.smallCellThreshold },
      );
      // As the server's engine runs it: with its values inlined as literals where it can.
      const statement = aggregateStatement(compiled);
      const inlined = platform.engine.kind === 'duckdb' ? inlineParameters(statement) : undefined;
      statements.push(inlined ? { sql: inlined, params: [] } : statement);
    }
    return statements;
  } finally {
    await platform.close();
  }
}
