// npm run bench:catalog — the catalog of a 500 TB lake, metadata only: 200 hospitals × 10 years
// × 12 months of lab results, each month's release of 84 Parquet files (about two million
// files) and 6,000 replaced releases besides, in PostgreSQL. Times planning (the releases a
// query reads, from the catalog, and its SQL for the engine) of a one-hospital, one-month query
// and of an all-hospitals, one-code, ten-year query, against the targets of 100 ms and 1 s, and
// prints time / target. Starts its own PostgreSQL (scripts/services/postgres.sh) unless
// --database-url names one that allows CREATE DATABASE. Options: --hospitals N, --months N,
// --files N, --replaced N, --runs N.
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
    hospitals: { type: 'string', default: '200' },
    months: { type: 'string', default: '120' },
    files: { type: 'string', default: '84' },
    replaced: { type: 'string', default: '6000' },
    runs: { type: 'string', default: '9' },
  },
});
const hospitals = Number(values.hospitals);
const months = Number(values.months);
const filesPerRelease = Number(values.files);
const replaced = Number(values.replaced);
const runs = Number(values.runs);
const root = path.resolve(import.meta.dirname, '..');

let adminUrl = values['database-url'];
const startedPostgres = !adminUrl;
if (!adminUrl) {
  adminUrl = execFileSync('bash', [path.join(root, 'scripts/services/postgres.sh'), 'start'], {
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'inherit'],
  }).trim();
}
const database = `medlake_bench_catalog_${process.pid}`;
const admin = new pg.Client({ connectionString: adminUrl });
await admin.connect();
await admin.query(`create database ${database}`);
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
    const contract = JSON.parse(
      await readFile(path.join(root, 'server/config/contracts/lab-results.json'), 'utf8'),
    );
    await saveDataset(platform, contract);
    const started = Date.now();
    await fill(platform);
    console.log(
      `catalog: ${hospitals} hospitals × ${months} months = ${(hospitals * months).toLocaleString('en-US')} current releases (+ ${replaced.toLocaleString('en-US')} replaced), ${(hospitals * months * filesPerRelease).toLocaleString('en-US')} files; filled in ${((Date.now() - started) / 1000).toFixed(1)} s`,
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
    ];
    for (const item of cases) {
      const spec = querySpecSchema.parse(item.spec);
      const times: number[] = [];
      let files = 0;
      for (let run = 0; run < runs; run++) {
        const start = performance.now();
        const { plan, compiled } = await planAndCompile(platform, spec, access, columns);
        times.push(performance.now() - start);
        files = plan.main.length;
        if (compiled.sql.length === 0) throw new Error('no SQL');
      }
      const median = times.sort((a, b) => a - b)[Math.floor(times.length / 2)]!;
      console.log(
        `${item.name}: ${files.toLocaleString('en-US')} releases read, planning ${median.toFixed(1)} ms (median of ${runs}); target ${item.target} ms; ratio ${(median / item.target).toFixed(2)}`,
      );
    }
  } finally {
    await platform.close();
  }
} finally {
  await admin.query(`drop database if exists ${database}`);
  await admin.end();
  await rm(home, { recursive: true, force: true });
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
  await sql`analyze`.execute(db);
}
