import { mkdtemp, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { DuckDBInstance } from '@duckdb/node-api';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestPlatform, testActor, type TestPlatform } from '../../test/helper.ts';
import { prepareDataset } from '../../test/ingest-helpers.ts';
import { generateExports } from '../demo/generate-exports.ts';
import { bytesOf } from '../env.ts';
import { jobsRepository } from '../catalog/jobs-repository.ts';
import { releasesRepository } from '../catalog/releases-repository.ts';
import { openConfiguredVault } from '../vault/configured-vault.ts';
import { ingestUpload, type IngestJobProgress } from './ingest-upload.ts';

// A month several times larger than the ingest's memory limit: DuckDB must spill its staged
// rows, joins and distinct ids to disk, and the vault sees the patients in several batches.
const memoryLimit = '128MB';
const rows = 1_100_000;

const literal = (value: string) => `'${value.replaceAll("'", "''")}'`;

describe('an upload larger than the ingest memory limit', () => {
  let platform: TestPlatform;
  let scratch: string;
  let csv: string;

  beforeAll(async () => {
    scratch = await mkdtemp(path.join(tmpdir(), 'medlake-large-upload-'));
    const [generated] = await generateExports({
      hospitals: 1,
      months: 1,
      rows,
      outDir: scratch,
      firstMonth: '2024-03',
    });
    csv = generated!.file;
    platform = await createTestPlatform('pglite', { MEDLAKE_INGEST_MEMORY: memoryLimit });
    await prepareDataset(platform, 'lab-results', ['h01']);
  }, 120_000);

  afterAll(async () => {
    await platform?.dispose();
    await rm(scratch, { recursive: true, force: true });
  });

  it('is published whole, and the lake holds what the file holds', async () => {
    expect((await stat(csv)).size).toBeGreaterThan(2 * bytesOf(memoryLimit));
    const progress: IngestJobProgress[] = [];
    const result = await ingestUpload(platform, {
      actor: testActor,
      datasetId: 'lab-results',
      hospitalId: 'h01',
      month: '2024-03',
      fileName: path.basename(csv),
      source: { file: csv },
      onProgress: (report) => progress.push(report),
    });
    if (result.status !== 'published') throw new Error(`not published: ${result.status}`);
    expect(result.rows).toBe(rows);
    expect(result.rejectedRows).toBe(0);

    // Progress counts the file's rows: estimated while a step runs, counted when it ends.
    const steps = progress.flatMap((report) => (report.phase === 'landing' ? [] : [report]));
    const reading = steps.filter((report) => report.phase === 'reading');
    for (const report of reading) expect(report.rowsProcessed).toBeLessThanOrEqual(rows * 1.05);
    expect(reading.at(-1)).toMatchObject({ percent: 100, rowsProcessed: rows, estimated: false });
    expect(steps.filter((report) => report.phase === 'writing').at(-1)).toMatchObject({
      percent: 100,
      rowsProcessed: rows,
      estimated: false,
    });
    expect(steps.filter((report) => report.phase === 'pseudonymizing').at(-1)).toMatchObject({
      percent: 100,
      counting: 'patients',
      rowsProcessed: result.quality.patients,
    });
    // The job record holds the same figures.
    const job = await jobsRepository(platform.catalog.db).get(result.jobId);
    expect(job?.progress).toMatchObject({ phase: 'profiling' });

    const release = await releasesRepository(platform.catalog.db).get(result.releaseId);
    const files = (release?.files ?? []).map((key) => platform.store.locate(key));
    expect(files.length).toBeGreaterThan(0);

    const instance = await DuckDBInstance.create(':memory:');
    const connection = await instance.connect();
    const query = async (sql: string) =>
      (await connection.runAndReadAll(sql)).getRowObjectsJS() as Array<Record<string, unknown>>;
    try {
      await connection.run(
        `CREATE TABLE source AS SELECT * FROM read_csv(${literal(csv)}, header = true, all_varchar = true)`,
      );
      await connection.run(
        `CREATE TABLE lake AS SELECT * FROM read_parquet([${files.map(literal).join(', ')}])`,
      );

      // Per test code: how many results, and the sum of the numeric ones.
      const byCode = (table: string, code: string, value: string) =>
        query(`
          SELECT ${code} AS code, count(*) AS n, round(sum(TRY_CAST(${value} AS DOUBLE)), 3) AS total
          FROM ${table} GROUP BY 1 ORDER BY 1`);
      const sourceCodes = await byCode('source', 'loinc_code', 'result_value');
      expect(sourceCodes.length).toBeGreaterThan(10);
      expect(await byCode('lake', 'code', 'value')).toEqual(sourceCodes);

      // Per patient, through the vault: every real id's rows are its pseudonym's rows.
      const sourcePatients = await query(
        'SELECT patient_mrn AS id, count(*) AS n FROM source GROUP BY 1',
      );
      const vault = await openConfiguredVault(platform.env);
      const pseudonyms = vault.pseudonymize(
        { space: 'hospital:h01', kind: 'patient' },
        sourcePatients.map((row) => String(row.id)),
      );
      vault.close();
      const lakePatients = new Map(
        (await query('SELECT patient AS id, count(*) AS n FROM lake GROUP BY 1')).map((row) => [
          String(row.id),
          Number(row.n),
        ]),
      );
      expect(lakePatients.size).toBe(sourcePatients.length);
      expect(release?.quality.patients).toBe(sourcePatients.length);
      const mismatched = sourcePatients.filter(
        (row) =>
          lakePatients.get(pseudonyms.get(String(row.id))?.pseudonym ?? '') !== Number(row.n),
      );
      expect(mismatched).toEqual([]);

      // Beyond memory the ranges go through scratch files: the rows are still in order of
      // code, then event date, within each file and from one file to the next.
      expect(files.length).toBeGreaterThan(1);
      const [unordered] = await query(`
        SELECT count(*) AS n FROM (
          SELECT code, collected_at,
            lag(code) OVER w AS previous_code, lag(collected_at) OVER w AS previous_at
          FROM read_parquet([${files.map(literal).join(', ')}], filename = true, file_row_number = true)
          WINDOW w AS (ORDER BY list_position([${files.map(literal).join(', ')}], filename), file_row_number))
        WHERE previous_code > code OR (previous_code = code AND previous_at > collected_at)`);
      expect(Number(unordered?.n)).toBe(0);

      // No real patient id reached the lake.
      const [leaked] = await query(
        'SELECT count(*) AS n FROM lake WHERE patient IN (SELECT patient_mrn FROM source)',
      );
      expect(Number(leaked?.n)).toBe(0);
    } finally {
      connection.closeSync();
      instance.closeSync();
    }
  }, 180_000);

  it('fails for lack of memory with a message naming the setting, and publishes nothing', async () => {
    const starved = await createTestPlatform('pglite', { MEDLAKE_INGEST_MEMORY: '16MB' });
    try {
      await prepareDataset(starved, 'lab-results', ['h01']);
      const failure = await ingestUpload(starved, {
        actor: testActor,
        datasetId: 'lab-results',
        hospitalId: 'h01',
        month: '2024-03',
        fileName: path.basename(csv),
        source: { file: csv },
      }).then(
        () => undefined,
        (error: unknown) => error as Error,
      );
      expect(failure?.message).toMatch(/out of memory.*raise MEDLAKE_INGEST_MEMORY/);
      expect(failure?.message).not.toMatch(/Out of Memory Error|allocate|threads/);

      const releases = releasesRepository(starved.catalog.db);
      expect(await releases.current('lab-results', 'h01', '2024-03')).toBeUndefined();
      expect(await starved.store.list('lake/')).toEqual([]);
      const { jobs } = await jobsRepository(starved.catalog.db).list('ingest', null, {
        page: 1,
        pageSize: 10,
      });
      expect(jobs).toMatchObject([{ status: 'failed', error: { message: failure?.message } }]);
    } finally {
      await starved.dispose();
    }
  }, 180_000);
});
