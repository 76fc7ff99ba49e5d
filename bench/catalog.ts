// npm run bench:catalog — the catalog of a 500 TB lake, metadata only: 200 hospitals × 10 years
// × 12 months of lab results, each month's release of 84 Parquet files (about two million
// files) and 6,000 replaced releases besides, in PostgreSQL, with every file's statistics
// (release_files: its codes, event dates and rows) as ingest records them for a clustered
// release, whose files each hold a contiguous range of codes. Times planning (the releases and
// files a query reads, from the catalog, and its SQL for the engine) of a one-hospital,
// one-month query, an all-hospitals, one-code, ten-year query and an all-hospitals, one-code,
// one-month query, against their targets; prints files read of files in the lake, and time /
// target. Starts its own PostgreSQL (scripts/services/postgres.sh) unless --database-url names
// one that allows CREATE DATABASE. Options: --hospitals N, --months N, --files N (per
// release), --codes N (distinct codes in a month), --replaced N, --runs N, --no-file-stats
// (the catalog as before release_files: every file of a release is read), --keep (leaves the
// filled database, and prints its URL, for EXPLAIN), --catalog-url URL (times a catalog kept by
// --keep, as it is, without filling one: so that two planners can be timed in turn on the same
// catalog; --hospitals, --months and --files must be those it was filled with).
import { execFileSync } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { sql } from 'kysely';
import pg from 'pg';
import { loadEnv } from '../server/src/env.ts';
import { openPlatform, type Platform } from '../server/src/platform.ts';
import { queryColumns } from '../server/src/query/query-columns.ts';
import { querySpecSchema } from '../shared/src/query-spec.ts';
import { saveDataset, addHospital } from '../server/src/use-cases/manage-datasets.ts';
import { planAndCompile } from '../server/src/use-cases/queries/run-query-job.ts';
import { datasetsRepository } from '../server/src/catalog/datasets-repository.ts';

const { values } = parseArgs({
  options: {
    'database-url': { type: 'string' },
    'catalog-url': { type: 'string' },
    hospitals: { type: 'string', default: '200' },
    months: { type: 'string', default: '120' },
    files: { type: 'string', default: '84' },
    codes: { type: 'string', default: '1500' },
    replaced: { type: 'string', default: '6000' },
    runs: { type: 'string', default: '9' },
    'no-file-stats': { type: 'boolean', default: false },
    keep: { type: 'boolean', default: false },
  },
});
const codeCount = Number(values.codes);
const withFileStats = !values['no-file-stats'];
const hospitals = Number(values.hospitals);
const months = Number(values.months);
const filesPerRelease = Number(values.files);
const replaced = Number(values.replaced);
const runs = Number(values.runs);
const root = path.resolve(import.meta.dirname, '..');

const filledUrl = values['catalog-url'];
let adminUrl = filledUrl ?? values['database-url'];
const startedPostgres = !adminUrl;
if (!adminUrl) {
  adminUrl = execFileSync('bash', [path.join(root, 'scripts/services/postgres.sh'), 'start'], {
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'inherit'],
  }).trim();
}
const admin = new pg.Client({ connectionString: adminUrl });
await admin.connect();
const database = filledUrl
  ? new URL(filledUrl).pathname.slice(1)
  : `medlake_bench_catalog_${process.pid}`;
if (!filledUrl) await admin.query(`create database ${database}`);
const databaseUrl = new URL(adminUrl);
databaseUrl.pathname = `/${database}`;
const home = await mkdtemp(path.join(tmpdir(), 'medlake-bench-catalog-'));
const actor = { userId: null, name: 'bench', source: 'bench' };

try {
  const platform = await openPlatform(
    loadEnv({ MEDLAKE_HOME: home, DATABASE_URL: databaseUrl.toString(), LOG_LEVEL: 'silent' }),
    { migrate: true },
  );
  try {
    const started = Date.now();
    if (!filledUrl) {
      const contract = JSON.parse(
        await readFile(path.join(root, 'server/config/contracts/lab-results.json'), 'utf8'),
      );
      await saveDataset(platform, contract);
      await fill(platform);
    }
    const lakeFiles = hospitals * months * filesPerRelease;
    const statistics = withFileStats
      ? `${((hospitals * months + replaced) * filesPerRelease).toLocaleString('en-US')} files' statistics (${codeCount.toLocaleString('en-US')} codes a month)`
      : 'no file statistics';
    console.log(
      `catalog: ${hospitals} hospitals × ${months} months = ${(hospitals * months).toLocaleString('en-US')} current releases (+ ${replaced.toLocaleString('en-US')} replaced), ${lakeFiles.toLocaleString('en-US')} files, ${statistics}; ${filledUrl ? 'filled before (--catalog-url)' : `filled in ${((Date.now() - started) / 1000).toFixed(1)} s`}`,
    );

    const dataset = (await datasetsRepository(platform.catalog.db).get('lab-results'))!;
    const columns = queryColumns(dataset.contract);
    const access = { level: 'aggregate' as const, hospitals: null, holder: 'user:bench' };
    const lastMonth = monthAt(months - 1);
    const cases = [
      {
        name: 'one hospital, one month',
        target: 100,
        spec: {
          dataset: 'lab-results',
          where: {
            and: [
              { column: 'hospital', op: 'eq', value: hospitalAt(42 % hospitals) },
              { op: 'months', from: lastMonth, to: lastMonth },
            ],
          },
          groupBy: [{ column: 'code' }],
          measures: [{ fn: 'patients' }, { fn: 'mean', column: 'value' }],
        },
      },
      {
        name: 'all hospitals, one code, ten years',
        target: 1000,
        spec: {
          dataset: 'lab-results',
          where: {
            and: [
              { op: 'code', codes: ['2345-7'] },
              { op: 'months', from: monthAt(0), to: lastMonth },
            ],
          },
          groupBy: [{ column: 'collected_at', bucket: 'month' }],
          measures: [{ fn: 'patients' }],
        },
      },
      {
        name: 'all hospitals, one code, one month',
        target: 100,
        spec: {
          dataset: 'lab-results',
          where: {
            and: [
              { column: 'code', op: 'eq', value: '2345-7' },
              { op: 'months', from: lastMonth, to: lastMonth },
            ],
          },
          groupBy: [{ column: 'hospital' }],
          measures: [{ fn: 'patients' }, { fn: 'mean', column: 'value' }],
        },
      },
    ];
    for (const item of cases) {
      const spec = querySpecSchema.parse(item.spec);
      const times: number[] = [];
      let releasesRead = 0;
      let filesRead = 0;
      for (let run = 0; run < runs; run++) {
        const start = performance.now();
        const { plan, compiled } = await planAndCompile(platform, spec, access, columns);
        times.push(performance.now() - start);
        releasesRead = plan.main.length;
        // A release the planner could not narrow is read whole, as its folder.
        filesRead = plan.main.reduce(
          (sum, release) => sum + (release.readFiles?.length ?? filesPerRelease),
          0,
        );
        if (compiled.sql.length === 0) throw new Error('no SQL');
      }
      const median = times.sort((a, b) => a - b)[Math.floor(times.length / 2)]!;
      console.log(
        `${item.name}: ${releasesRead.toLocaleString('en-US')} releases, ${filesRead.toLocaleString('en-US')} of ${lakeFiles.toLocaleString('en-US')} files read; planning ${median.toFixed(1)} ms (median of ${runs}); target ${item.target} ms; ratio ${(median / item.target).toFixed(2)}`,
      );
    }
  } finally {
    await platform.close();
  }
} finally {
  if (values.keep || filledUrl) console.log(`kept: ${databaseUrl.toString()}`);
  else await admin.query(`drop database if exists ${database}`);
  await admin.end();
  await rm(home, { recursive: true, force: true });
  // The audit chain's signed checkpoints live beside the home (MEDLAKE_AUDIT_CHECKPOINTS).
  await rm(`${home}-audit`, { recursive: true, force: true });
  if (startedPostgres) {
    execFileSync('bash', [path.join(root, 'scripts/services/postgres.sh'), 'stop'], {
      stdio: 'inherit',
    });
  }
}

function hospitalAt(index: number): string {
  return `h${String(index + 1).padStart(3, '0')}`;
}

function monthAt(index: number): string {
  const year = 2016 + Math.floor(index / 12);
  return `${year}-${String((index % 12) + 1).padStart(2, '0')}`;
}

/** Hospitals, one job, the releases with their file keys, and which is current per month. */
async function fill(platform: Platform) {
  const db = platform.catalog.db;
  for (let h = 0; h < hospitals; h++) {
    await addHospital(platform, actor, { id: hospitalAt(h), name: `Hospital ${h + 1}` });
  }
  const jobId = randomUUID();
  await db
    .insertInto('jobs')
    .values({ id: jobId, kind: 'ingest', status: 'succeeded', params: '{}' })
    .execute();
  const quality = JSON.stringify({ rows: 0 });
  type Row = {
    id: string;
    dataset_id: string;
    hospital_id: string;
    month: string;
    job_id: string;
    contract_version: number;
    content_id: string;
    source_bytes: number;
    row_count: number;
    rejected_row_count: number;
    files: string;
    quality: string;
  };
  const release = (h: number, m: number): Row => {
    const id = randomUUID();
    const prefix = `lake/lab-results/hospital=${hospitalAt(h)}/month=${monthAt(m)}/release=${id}`;
    return {
      id,
      dataset_id: 'lab-results',
      hospital_id: hospitalAt(h),
      month: monthAt(m),
      job_id: jobId,
      contract_version: 1,
      content_id: id.replaceAll('-', ''),
      source_bytes: 2_000_000_000,
      row_count: 20_000_000,
      rejected_row_count: 0,
      files: JSON.stringify(
        Array.from({ length: filesPerRelease }, (_, f) => `${prefix}/part-${f}.parquet`),
      ),
      quality,
    };
  };
  let batch: Row[] = [];
  let current: Array<{
    dataset_id: string;
    hospital_id: string;
    month: string;
    release_id: string;
  }> = [];
  const flush = async () => {
    if (batch.length > 0) await db.insertInto('releases').values(batch).execute();
    if (current.length > 0) await db.insertInto('current_releases').values(current).execute();
    batch = [];
    current = [];
  };
  for (let r = 0; r < replaced; r++) {
    batch.push(release(r % hospitals, Math.floor(r / hospitals) % months));
    if (batch.length >= 500) await flush();
  }
  for (let h = 0; h < hospitals; h++) {
    for (let m = 0; m < months; m++) {
      const row = release(h, m);
      batch.push(row);
      current.push({
        dataset_id: 'lab-results',
        hospital_id: row.hospital_id,
        month: row.month,
        release_id: row.id,
      });
      if (batch.length >= 500) await flush();
    }
  }
  await flush();
  if (withFileStats) await fillFileStats(platform);
  await sql`analyze`.execute(db);
}

/**
 * Every release's files with the statistics ingest records for a clustered release (sorted by
 * code, then event date, cut into files of equal rows): each file holds a contiguous range of
 * the month's codes, a common code spreads over several files, and each spans the month's
 * event dates. Code frequencies follow Zipf's law, as lab tests do (a few panels make most
 * rows), in an order unrelated to the codes' sort order. Written by PostgreSQL itself from one
 * template of a release's files, joined with every release, a release's files together as
 * ingest writes them (one release at a time), month by month.
 */
async function fillFileStats(platform: Platform) {
  const codes = labCodes(codeCount);
  const weights = codes.map((_, index) => 1 / (1 + ((index * 7919) % codes.length)));
  const total = weights.reduce((sum, weight) => sum + weight, 0);
  const rowsPerFile = 20_000_000 / filesPerRelease;
  // Where each code's rows start and end in the release, in rows.
  let start = 0;
  const spans = codes.map((code, index) => {
    const end = start + (20_000_000 * weights[index]!) / total;
    const span = { code, start, end };
    start = end;
    return span;
  });
  const template = Array.from({ length: filesPerRelease }, (_, file) => {
    const [from, to] = [file * rowsPerFile, (file + 1) * rowsPerFile];
    return {
      file,
      rows: Math.round(rowsPerFile),
      codes: spans.filter((span) => span.start < to && span.end > from).map((span) => span.code),
    };
  });
  await sql`
    insert into release_files (release_id, file, row_count, codes, first_event, last_event)
    select r.id, 'part-' || t.file || '.parquet', t.rows, t.codes, r.month || '-01',
      to_char(to_date(r.month || '-01', 'YYYY-MM-DD') + interval '1 month' - interval '1 day', 'YYYY-MM-DD')
    from releases r
    cross join jsonb_to_recordset(${JSON.stringify(template)}::jsonb) as t(file int, rows bigint, codes jsonb)
    order by r.month, r.hospital_id, r.published_at, t.file
  `.execute(platform.catalog.db);
}

/** This many distinct LOINC-like codes, sorted, among them 2345-7 (glucose), which the queries ask for. */
function labCodes(count: number): string[] {
  const codes = new Set(['2345-7']);
  for (let index = 0; codes.size < count; index++) {
    codes.add(`${1000 + ((index * 7577) % 90000)}-${index % 10}`);
  }
  return [...codes].sort();
}
