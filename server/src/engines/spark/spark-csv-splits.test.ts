import { randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { IngestProblem, QualityReport } from '@medlake/shared';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestPlatform, testActor, type TestPlatform } from '../../../test/helper.ts';
import { contractFile, fixtureLines, ingest } from '../../../test/ingest-helpers.ts';
import { readParquet } from '../../../test/parquet.ts';
import { testSparkUrl } from '../../../test/spark.ts';
import { releasesRepository } from '../../catalog/releases-repository.ts';
import type { SourceColumn } from '../../ingest/ingest-plan.ts';
import { addHospital, saveDataset } from '../../use-cases/manage-datasets.ts';
import { rowsOf } from './arrow-json.ts';
import { parseConnectUrl } from './connect-url.ts';
import { SparkConnectClient } from './spark-connect-client.ts';
import { sparkIngestDialect } from './spark-ingest-dialect.ts';

/**
 * A CSV whose contract declares no multi-line values is read by Spark a split at a time, in
 * tasks of their own; its records are still numbered by their lines, across splits.
 */
describe('a CSV read by Spark in splits', () => {
  let client: SparkConnectClient;
  let directory: string;

  beforeAll(async () => {
    client = new SparkConnectClient(parseConnectUrl(testSparkUrl()));
    directory = await mkdtemp(path.join(tmpdir(), 'medlake-splits-'));
  });

  afterAll(async () => {
    for (const table of ['staged', 'line_splits']) {
      await client.sql(`UNCACHE TABLE IF EXISTS ${table}`).catch(() => undefined);
    }
    await client.close();
    await rm(directory, { recursive: true, force: true });
  });

  const columns: SourceColumn[] = [
    { position: 1, header: 'id', column: undefined, readAs: 'integer' },
    { position: 2, header: 'label', column: undefined, readAs: 'varchar' },
    { position: 3, header: 'day', column: undefined, readAs: 'date' },
  ];

  it('numbers records by line in every split, and names each problem by its line', async () => {
    // Line n (from 2) holds id n; about 170 kB, ten splits of 16 kB.
    const lines = ['id,label,day'];
    for (let line = 2; line <= 4000; line += 1) {
      lines.push(
        `${line},"label, ""quoted"" ${line}",2020-01-${String((line % 28) + 1).padStart(2, '0')}`,
      );
    }
    // Counted from 1, as the report counts them.
    const set = (line: number, text: string) => (lines[line - 1] = text);
    set(1500, '');
    set(1501, '   ');
    set(2200, 'x2200,label,2020-01-01');
    set(2900, '2900,label');
    // Written as Latin-1 below: the é is a byte that is not UTF-8.
    set(3300, '3300,café,2020-01-01');
    set(3600, '3600,"a value that runs on');
    set(3601, 'to the next line",2020-01-01');
    const file = path.join(directory, 'month.csv');
    await writeFile(file, `${lines.join('\n')}\n`, 'latin1');

    const reader = sparkIngestDialect.readCsv({
      location: file,
      delimiter: ',',
      multiLineValues: false,
      sizeBytes: (await readFile(file)).length,
      columns,
      kept: columns,
      flags: [],
    });
    expect(reader.recordsAreLines).toBe(true);
    await client.sql('SET spark.sql.files.maxPartitionBytes = 16384');
    for (const statement of reader.setup) await client.sql(statement);
    const rows = async (query: string) => rowsOf(await client.sql(query));

    // The file is read by one task per split.
    const tasks = await rows(
      `SELECT count(DISTINCT task) AS n FROM (SELECT spark_partition_id() AS task FROM (${reader.staged}) s)`,
    );
    expect(Number(tasks[0]?.n)).toBeGreaterThanOrEqual(5);

    await client.createQueryView('staged', reader.staged);
    await client.sql('CACHE TABLE staged');
    for (const { name, query } of reader.tables ?? []) {
      await client.createQueryView(name, query);
      await client.sql(`CACHE TABLE ${name}`);
    }
    const splits = await rows('SELECT count(*) AS n FROM line_splits');
    expect(Number(splits[0]?.n)).toBeGreaterThanOrEqual(5);
    await client.createQueryView('accepted', reader.accepted);
    await client.createQueryView('read_problems', reader.problems);

    const problems = await rows(
      'SELECT record, position, code FROM read_problems ORDER BY record, position',
    );
    expect(problems.map((row) => [Number(row.record), row.position, row.code])).toEqual([
      [1501, null, 'missing_fields'],
      [2200, 1, 'invalid_value'],
      [2900, null, 'missing_fields'],
      [3300, null, 'invalid_encoding'],
      [3600, null, 'unterminated_quote'],
      [3601, null, 'unterminated_quote'],
    ]);
    // Every other line but the header and the empty one, each under its own line.
    const accepted = await rows(
      'SELECT count(*) AS n, count_if(record <> c1) AS misnumbered, min(record) AS first, max(record) AS last FROM accepted',
    );
    expect(accepted.map((row) => Object.values(row).map(Number))).toEqual([
      [4000 - 1 - 7, 0, 2, 4000],
    ]);
    const quoted = await rows('SELECT c2 FROM accepted WHERE record = 3000');
    expect(quoted).toEqual([{ c2: 'label, "quoted" 3000' }]);
    // The server's cache is shared by its sessions.
    for (const table of ['staged', 'line_splits']) await client.sql(`UNCACHE TABLE ${table}`);
  });

  it('reads a file that starts with a byte order mark and ends its lines with CR LF', async () => {
    const lines = [
      '\uFEFFid,label,day',
      '2,two,2020-01-02',
      '3,three,2020-01-03',
      'x4,four,2020-01-04',
    ];
    const file = path.join(directory, 'crlf.csv');
    await writeFile(file, `${lines.join('\r\n')}\r\n`);
    const reader = sparkIngestDialect.readCsv({
      location: file,
      delimiter: ',',
      multiLineValues: false,
      sizeBytes: (await readFile(file)).length,
      columns,
      kept: columns,
      flags: [],
    });
    for (const statement of reader.setup) await client.sql(statement);
    await client.createQueryView('staged', reader.staged);
    for (const { name, query } of reader.tables ?? []) await client.createQueryView(name, query);
    await client.createQueryView('accepted', reader.accepted);
    await client.createQueryView('read_problems', reader.problems);
    const accepted = rowsOf(
      await client.sql(
        'SELECT record, c2, CAST(c3 AS STRING) AS day FROM accepted ORDER BY record',
      ),
    );
    expect(accepted.map((row) => [Number(row.record), row.c2, row.day])).toEqual([
      [2, 'two', '2020-01-02'],
      [3, 'three', '2020-01-03'],
    ]);
    const problems = rowsOf(await client.sql('SELECT record, position, code FROM read_problems'));
    expect(problems.map((row) => [Number(row.record), row.position, row.code])).toEqual([
      [4, 1, 'invalid_value'],
    ]);
  });
});

/**
 * The same month ingested on DuckDB and on Spark reading splits of 64 kB: the same lake and
 * the same problems at the same lines.
 */
describe('ingestion on Spark in splits, beside DuckDB', () => {
  let vault: string;
  const platforms: Record<'duckdb' | 'spark', TestPlatform> = {} as never;
  const results: Record<'duckdb' | 'spark', Awaited<ReturnType<typeof ingest>>> = {} as never;

  beforeAll(async () => {
    vault = await mkdtemp(path.join(tmpdir(), 'medlake-shared-vault-'));
    const shared = {
      MEDLAKE_VAULT_DIR: vault,
      MEDLAKE_VAULT_KEY: randomBytes(32).toString('hex'),
    };
    platforms.duckdb = await createTestPlatform('pglite', shared);
    platforms.spark = await createTestPlatform('pglite', {
      ...shared,
      MEDLAKE_ENGINE: 'spark',
      SPARK_CONNECT_URL: testSparkUrl(),
      MEDLAKE_SPARK_SPLIT_SIZE: '64KB',
    });
    const contract = {
      ...JSON.parse(await readFile(contractFile('synthea-observations'), 'utf8')),
      multiLineValues: false,
      maxRejectedRows: 50,
    };
    const { header, rows } = await fixtureLines('2020-12');
    // About 320 kB: five splits. Problems in the later ones, at lines counted from 1.
    const lines = [header, ...rows];
    lines.splice(400, 0, '', '   ');
    const fields = (line: number) => lines[line - 1]!.split(',');
    lines[700 - 1] = fields(700).slice(0, -1).join(',');
    lines[900 - 1] = fields(900)
      .map((field, index) => (index === 13 ? '2020-12-32T10:00:00Z' : field))
      .join(',');
    lines[1000 - 1] = fields(1000)
      .map((field, index) => (index === 0 ? '' : field))
      .join(',');
    const text = `${lines.join('\n')}\n`;
    for (const [engine, platform] of Object.entries(platforms)) {
      await addHospital(platform, testActor, { id: 'synthea', name: 'Hospital synthea' });
      await saveDataset(platform, contract);
      results[engine as 'duckdb' | 'spark'] = await ingest(platform, { text, month: '2020-12' });
    }
  }, 240_000);

  afterAll(async () => {
    for (const platform of Object.values(platforms)) await platform?.dispose();
    await rm(vault, { recursive: true, force: true });
  });

  it('names the same problems at the same lines', () => {
    const qualityOf = (engine: 'duckdb' | 'spark'): QualityReport => {
      const result = results[engine];
      if (result.status !== 'published') throw new Error(`${engine}: ${result.status}`);
      return result.quality;
    };
    const [duckdb, spark] = [qualityOf('duckdb'), qualityOf('spark')];
    const located = (problem: IngestProblem) => [problem.line, problem.column, problem.code];
    expect(spark.rejectedSamples.map(located)).toEqual(
      expect.arrayContaining([
        [402, null, 'missing_fields'],
        [700, null, 'missing_fields'],
        [900, 14, 'invalid_value'],
        [1000, 1, 'missing_value'],
      ]),
    );
    // DuckDB names each missing field of a short line, Spark the line: the lines are the same.
    const lines = (report: QualityReport) => [
      ...new Set(report.rejectedSamples.map((problem) => `${problem.line} ${problem.code}`)),
    ];
    expect(lines(spark)).toEqual(lines(duckdb));
    const withoutSamples = (report: QualityReport) =>
      comparable({ ...report, rejectedSamples: [] });
    expect(withoutSamples(spark)).toEqual(withoutSamples(duckdb));
  });

  it('writes the same rows', async () => {
    const rowsOfRelease = async (platform: TestPlatform) => {
      const repository = releasesRepository(platform.catalog.db);
      const [release] = await repository.list();
      const files = ((await repository.get(release!.id))?.files ?? []).map((key) =>
        platform.store.locate(key),
      );
      return (await readParquet(files))
        .map(({ release: _, ...row }) => JSON.stringify(row, jsonValue))
        .sort();
    };
    const duckdb = await rowsOfRelease(platforms.duckdb);
    const spark = await rowsOfRelease(platforms.spark);
    expect(duckdb.length).toBeGreaterThan(1000);
    expect(spark.length).toBe(duckdb.length);
    expect(spark.filter((row, index) => row !== duckdb[index]).slice(0, 3)).toEqual([]);
  });
});

/** A quality report with its figures to 12 significant digits (sums may differ in the last bit). */
function comparable(report: QualityReport): unknown {
  return JSON.parse(
    JSON.stringify(report, (key, value) => {
      if (key === 'releaseId') return undefined;
      return typeof value === 'number' && !Number.isInteger(value)
        ? Number(value.toPrecision(12))
        : value;
    }),
  );
}

function jsonValue(_: string, value: unknown): unknown {
  return typeof value === 'bigint' ? String(value) : value;
}
