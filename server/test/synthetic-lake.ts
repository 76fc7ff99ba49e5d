import { randomUUID } from 'node:crypto';
import { DuckDBInstance } from '@duckdb/node-api';
import { lakeColumns, type QualityReport } from '@medlake/shared';
import type { Dataset } from '../src/catalog/datasets-repository.ts';
import { hospitalsRepository } from '../src/catalog/hospitals-repository.ts';
import { jobsRepository } from '../src/catalog/jobs-repository.ts';
import { releasesRepository } from '../src/catalog/releases-repository.ts';
import { DuckDbS3, s3Options } from '../src/engines/duckdb/duckdb-s3.ts';
import { quoteLiteral } from '../src/engines/duckdb/duckdb-sql.ts';
import type { Actor } from '../src/audit/audit-log.ts';
import { duckDbIngestDialect } from '../src/engines/duckdb/duckdb-ingest-dialect.ts';
import { releaseFileName } from '../src/ingest/lake-keys.ts';
import { releaseSort, rowGroupRows } from '../src/ingest/lake-layout.ts';
import { readReleaseFileStats } from '../src/ingest/release-file-stats.ts';
import type { Platform } from '../src/platform.ts';
import { ingestFiles } from '../src/use-cases/ingest-upload.ts';
import { addHospital } from '../src/use-cases/manage-datasets.ts';
import { numericTests } from '../src/demo/lab-tests.ts';

const syntheticActor: Actor = { userId: null, name: 'synthetic lake', source: 'medlake' };

/**
 * Publishes a large synthetic `lab-results` lake straight as Parquet, release by release, as
 * an ingest would publish it: for benchmarks and for tests that need queries that take a while.
 * Ingesting tens of millions of CSV rows would take longer than what they are made for, and
 * the query path cannot tell the difference. Hospitals are h01, h02, …; months 2024-01, …, on
 * into later years for more than twelve.
 * Each release is laid out as ingest lays it out (ingest/lake-layout.ts: sorted by code, then
 * event date, in row groups of the size ingest picks), and the catalog gets its file
 * statistics as an ingest records them (ingest/release-file-stats.ts), so that the planner
 * and the engine skip here what they would skip in a real lake.
 */
export async function publishSyntheticLabResults(
  platform: Platform,
  dataset: Dataset,
  options: { hospitals: number; months: number; rowsPerRelease: number },
  onRelease?: () => void,
): Promise<void> {
  const tests = numericTests
    .map(
      (test) =>
        `(${[test.code, test.name, test.category, test.unit].map(quoteLiteral).join(', ')}, ${test.mean}, ${test.sd})`,
    )
    .join(', ');
  const instance = await DuckDBInstance.create(':memory:');
  const connection = await instance.connect();
  try {
    // A lake in an S3 bucket is written there directly, as the DuckDB ingest writes it.
    const s3 = platform.store.engineAccess;
    if (s3) {
      await DuckDbS3.open(
        connection,
        s3Options(s3, { extensionDirectory: platform.env.MEDLAKE_DUCKDB_EXTENSIONS }),
      );
    }
    await connection.run(
      `CREATE TABLE tests AS SELECT row_number() OVER () - 1 AS i, * FROM (VALUES ${tests}) t(code, name, category, unit, mean, sd)`,
    );
    const rows = <T>(sql: string) =>
      connection.runAndReadAll(sql).then((reader) => reader.getRowObjectsJS() as unknown as T[]);
    const sort = releaseSort(dataset.contract);
    // Empty values first, as both engines' writeRelease sort them.
    const order = sort.orderBy
      .map((column) => `${duckDbIngestDialect.quoteIdentifier(column)} NULLS FIRST`)
      .join(', ');
    const patientsPerHospital = Math.max(1000, Math.floor(options.rowsPerRelease / 12));
    for (let h = 0; h < options.hospitals; h += 1) {
      const hospital = `h${String(h + 1).padStart(2, '0')}`;
      if (!(await hospitalsRepository(platform.catalog.db).get(hospital))) {
        await addHospital(platform, syntheticActor, {
          id: hospital,
          name: `Synthetic hospital ${h + 1}`,
        });
      }
      for (let m = 0; m < options.months; m += 1) {
        // Month m counts from 2024-01 and runs on into the years after.
        const year = 2024 + Math.floor(m / 12);
        const month = `${year}-${String((m % 12) + 1).padStart(2, '0')}`;
        const jobId = randomUUID();
        const releaseId = randomUUID();
        const files = ingestFiles(platform, jobId, {
          datasetId: dataset.id,
          hospitalId: hospital,
          month,
          fileName: 'bench.csv',
          releaseId,
        });
        const lakeKey = `${files.lakeFolder}/${releaseFileName(0)}`;
        const target = await platform.store.locateForWrite(lakeKey);
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
            p.birth_year, CAST(${year} - p.birth_year AS SMALLINT) AS age, p.sex, p.race, p.ethnicity,
            'Massachusetts' AS state, p.zip,
            TIMESTAMP '${month}-01' + to_seconds(CAST((r * 7919) % 2419200 AS BIGINT)) AS collected_at,
            t.category, t.code, t.name AS description,
            round(t.mean + t.sd * (((r * 2654435761 + ${seed}) % 2000) / 1000.0 - 1), 1) AS value,
            CAST(NULL AS VARCHAR) AS value_text, t.unit, CAST(NULL AS VARCHAR) AS comment
          FROM range(${options.rowsPerRelease}) AS g(r)
          JOIN patients AS p ON p.i = (r * 31 + ${seed}) % ${patientsPerHospital}
          JOIN tests AS t ON t.i = (r * 17 + r // 7 + ${seed}) % ${numericTests.length}
          ${order ? `ORDER BY ${order}` : ''}
        ) TO ${quoteLiteral(target)} (FORMAT parquet, COMPRESSION snappy,
          ROW_GROUP_SIZE ${rowGroupRows(options.rowsPerRelease)})`);
        const fileStats = await readReleaseFileStats(
          { dialect: duckDbIngestDialect, rows },
          dataset.contract,
          { store: platform.store, folder: files.lakeFolder },
          [releaseFileName(0)],
        );
        // As an ingest measures it (ingest/quality-profile.ts), for disclosure control.
        const measured = await connection.runAndReadAll(
          `SELECT max(n) AS most FROM (SELECT count(*) AS n FROM read_parquet(${quoteLiteral(target)}) GROUP BY patient)`,
        );
        const maxRowsPerPatient = Number(measured.getRowObjects()[0]?.most ?? 0);
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
            contentId: randomUUID(),
            sourceBytes: 0,
            rowCount: options.rowsPerRelease,
            rejectedRowCount: 0,
            maxRowsPerPatient,
            files: [lakeKey],
            fileStats,
            quality,
          },
          async (trx) => {
            await jobsRepository(trx).finish(jobId, { status: 'succeeded', result: {} });
          },
        );
        onRelease?.();
      }
    }
  } finally {
    connection.closeSync();
    instance.closeSync();
  }
}
