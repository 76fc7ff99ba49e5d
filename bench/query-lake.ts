// Builds the lake bench/query.ts runs on: a MEDLAKE_HOME with the lab-results dataset, its
// releases published in the catalog as an ingest would publish them, and a researcher with a
// token. The Parquet is written by DuckDB straight from generated rows: ingesting 50 million
// rows of CSV would take longer than the benchmark itself, and the query path cannot tell.
import { randomUUID } from 'node:crypto';
import { readFile, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { DuckDBInstance } from '@duckdb/node-api';
import { lakeColumns, querySpecSchema, type QualityReport } from '@medlake/shared';
import { datasetsRepository } from '../server/src/catalog/datasets-repository.ts';
import { jobsRepository } from '../server/src/catalog/jobs-repository.ts';
import { releasesRepository } from '../server/src/catalog/releases-repository.ts';
import { numericTests } from '../server/src/demo/lab-tests.ts';
import { quoteLiteral } from '../server/src/engines/duckdb/duckdb-sql.ts';
import { loadEnv } from '../server/src/env.ts';
import { openPlatform } from '../server/src/platform.ts';
import { codeSetCodes, loadCodeSets } from '../server/src/query/code-sets.ts';
import { compileQuery, hiddenTotal } from '../server/src/query/compile-query.ts';
import { planQuery } from '../server/src/query/plan-query.ts';
import { queryColumns } from '../server/src/query/query-columns.ts';
import { candidateReleases } from '../server/src/use-cases/queries/candidate-releases.ts';
import { maxAggregateGroups } from '../server/src/use-cases/queries/run-query-job.ts';
import { ingestFiles } from '../server/src/use-cases/ingest-upload.ts';
import {
  addUser,
  createApiToken,
  grantDatasetAccess,
} from '../server/src/use-cases/manage-access.ts';
import { addHospital, saveDataset } from '../server/src/use-cases/manage-datasets.ts';

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
    const tests = numericTests
      .map(
        (test) =>
          `(${[test.code, test.name, test.category, test.unit].map(quoteLiteral).join(', ')}, ${test.mean}, ${test.sd})`,
      )
      .join(', ');
    const instance = await DuckDBInstance.create(':memory:');
    const connection = await instance.connect();
    await connection.run(
      `CREATE TABLE tests AS SELECT row_number() OVER () - 1 AS i, * FROM (VALUES ${tests}) t(code, name, category, unit, mean, sd)`,
    );
    const patientsPerHospital = Math.max(1000, Math.floor(options.rowsPerRelease / 12));
    for (let h = 0; h < options.hospitals; h += 1) {
      const hospital = `h${String(h + 1).padStart(2, '0')}`;
      await addHospital(platform, { id: hospital, name: `Bench hospital ${h + 1}` });
      for (let m = 0; m < options.months; m += 1) {
        const month = `2024-${String(m + 1).padStart(2, '0')}`;
        const jobId = randomUUID();
        const releaseId = randomUUID();
        const files = ingestFiles(platform, jobId, {
          datasetId: dataset.id,
          hospitalId: hospital,
          month,
          fileName: 'bench.csv',
          releaseId,
        });
        const target = await platform.store.locateForWrite(files.lakeKey);
        // The same patients every month: their attributes are made once per hospital.
        if (m === 0) {
          await connection.run(`
            CREATE OR REPLACE TABLE patients AS
            SELECT p AS i,
              'p_' || lpad(CAST(hash(${h}, p) % 1000000000000 AS VARCHAR), 20, '0') AS patient,
              CAST(1930 + hash(${h}, p, 'b') % 75 AS SMALLINT) AS birth_year,
              CASE hash(${h}, p, 's') % 2 WHEN 0 THEN 'F' ELSE 'M' END AS sex,
              (['white', 'black', 'asian', 'hawaiian', 'other'])[CAST(1 + hash(${h}, p, 'r') % 5 AS BIGINT)] AS race,
              CASE hash(${h}, p, 'e') % 5 WHEN 0 THEN 'hispanic' ELSE 'nonhispanic' END AS ethnicity,
              lpad(CAST(10 + hash(${h}, p, 'z') % 90 AS VARCHAR), 3, '0') AS zip
            FROM range(${patientsPerHospital}) AS g(p)`);
        }
        const seed = h * 1000 + m;
        await connection.run(`
          COPY (
            SELECT p.patient,
              'enc_' || CAST(${seed} AS VARCHAR) || '_' || CAST(r // 4 AS VARCHAR) AS encounter,
              p.birth_year, CAST(2024 - p.birth_year AS SMALLINT) AS age, p.sex, p.race, p.ethnicity,
              'Massachusetts' AS state, p.zip,
              TIMESTAMP '${month}-01' + to_seconds(CAST((r * 7919) % 2419200 AS BIGINT)) AS collected_at,
              t.category, t.code, t.name AS description,
              round(t.mean + t.sd * (((r * 2654435761 + ${seed}) % 2000) / 1000.0 - 1), 1) AS value,
              CAST(NULL AS VARCHAR) AS value_text, t.unit, CAST(NULL AS VARCHAR) AS comment
            FROM range(${options.rowsPerRelease}) AS g(r)
            JOIN patients AS p ON p.i = (r * 31 + ${seed}) % ${patientsPerHospital}
            JOIN tests AS t ON t.i = (r * 17 + r // 7 + ${seed}) % ${numericTests.length}
          ) TO ${quoteLiteral(target)} (FORMAT parquet, COMPRESSION snappy)`);
        const quality: QualityReport = {
          rows: options.rowsPerRelease,
          rejectedRows: 0,
          rejectedByReason: {},
          rejectedSamples: [],
          redactedValues: 0,
          patients: patientsPerHospital,
          columns: lakeColumns(dataset.contract).map((column) => ({
            name: column.name,
            nullRate: 0,
          })),
          codes: [],
          eventsOutsideMonth: 0,
          comparedWith: null,
          changes: [],
        };
        const jobs = jobsRepository(platform.catalog.db);
        await jobs.start({ id: jobId, kind: 'ingest', params: { bench: true } });
        await releasesRepository(platform.catalog.db).publish(
          {
            id: releaseId,
            datasetId: dataset.id,
            hospitalId: hospital,
            month,
            jobId,
            contractVersion: dataset.contractVersion,
            contentSha256: randomUUID(),
            sourceBytes: 0,
            rowCount: options.rowsPerRelease,
            rejectedRowCount: 0,
            files: [files.lakeKey],
            quality,
          },
          (trx) => jobsRepository(trx).finish(jobId, { status: 'succeeded', result: {} }),
        );
        process.stdout.write('.');
      }
    }
    console.log('');
    connection.closeSync();
    instance.closeSync();
    await addUser(platform, { email: 'bench@example.org', name: 'Bench', role: 'researcher' });
    await grantDatasetAccess(platform, {
      email: 'bench@example.org',
      datasetId: dataset.id,
      level: 'aggregate',
    });
    const { token } = await createApiToken(platform, {
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
 * The statement medlake's query service would run for each spec, as its worker builds it: the
 * current releases, the planner, the compiler, and the cap on groups.
 */
export async function compileForBench(
  home: string,
  specs: object[],
): Promise<Array<{ sql: string; params: unknown[] }>> {
  const platform = await openPlatform(loadEnv({ MEDLAKE_HOME: home, LOG_LEVEL: 'silent' }));
  try {
    const dataset = await datasetsRepository(platform.catalog.db).get('lab-results');
    if (!dataset) throw new Error('the bench lake has no lab-results dataset');
    const candidates = await candidateReleases(
      platform,
      { dataset: dataset.id },
      { level: 'aggregate', hospitals: null },
    );
    return specs.map((input) => {
      const plan = planQuery(querySpecSchema.parse({ dataset: dataset.id, ...input }), candidates);
      const locate = (releases: typeof candidates) =>
        releases.flatMap((release) => release.files.map((key) => platform.store.locate(key)));
      const statement = compileQuery(plan.spec, {
        dialect: platform.engine.dialect,
        columns: queryColumns(dataset.contract),
        codeSets: codeSetCodes(loadCodeSets()),
        files: { main: locate(plan.main), cohort: plan.cohort.map(locate) },
      });
      return {
        sql: `SELECT * FROM (${statement.sql}) AS r ORDER BY ${hiddenTotal} DESC LIMIT ${maxAggregateGroups + 2}`,
        params: statement.params,
      };
    });
  } finally {
    await platform.close();
  }
}
