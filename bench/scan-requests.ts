// npm run bench:scan-requests — the S3 requests DuckDB makes to read a query's releases: as
// each release folder's glob (`release=…/*.parquet`, as queries did before 2026-12-07, passing
// over a lost file), as the files the catalog lists by name, and as the DuckDB dialect reads
// them now (the folders' globs and a guard that counts what they match against the catalog, so
// that a lost file fails the query). Counted from DuckDB's own HTTP log, for a first query and
// for the ones after it (DuckDB keeps files' metadata and data between queries), and printed as
// requests per query and the ratios to the plain globs.
// Needs an S3 server: MEDLAKE_TEST_S3_URL (`source /tmp/medlake-test-env.sh`, or
// scripts/services/s3.sh) and MEDLAKE_TEST_DUCKDB_EXTENSIONS for httpfs.
// Options: --releases N (default 3), --files N per release (default 8), --runs N (default 3).
import { parseArgs } from 'node:util';
import { DuckDBInstance } from '@duckdb/node-api';
import { duckDbDialect } from '../server/src/engines/duckdb/duckdb-dialect.ts';
import { quoteLiteral } from '../server/src/engines/duckdb/duckdb-sql.ts';
import { testBucket } from '../server/test/s3.ts';

const { values } = parseArgs({
  options: {
    releases: { type: 'string', default: '3' },
    files: { type: 'string', default: '8' },
    runs: { type: 'string', default: '3' },
  },
});
const releases = Number(values.releases);
const files = Number(values.files);
const runs = Number(values.runs);

const bucket = await testBucket('');
try {
  const { settings } = bucket;
  const { credentials, endpoint: url } = settings;
  if (!credentials || !url) throw new Error('the test S3 server has no endpoint or credentials');
  const instance = await DuckDBInstance.create(':memory:', {
    extension_directory: process.env.MEDLAKE_TEST_DUCKDB_EXTENSIONS ?? '',
    autoinstall_known_extensions: 'false',
  });
  const db = await instance.connect();
  await db.run('LOAD httpfs');
  const endpoint = new URL(url);
  await db.run(`CREATE SECRET (TYPE s3, KEY_ID ${quoteLiteral(credentials.accessKeyId)},
    SECRET ${quoteLiteral(credentials.secretAccessKey)}, ENDPOINT ${quoteLiteral(endpoint.host)},
    URL_STYLE 'path', USE_SSL ${endpoint.protocol === 'https:'}, REGION 'us-east-1')`);
  const folder = (release: number) =>
    `s3://${settings.bucket}/lake/bench/hospital=h1/month=2024-01/release=r${release}`;
  for (let release = 0; release < releases; release++) {
    for (let file = 0; file < files; file++) {
      await db.run(
        `COPY (SELECT range AS x FROM range(1000)) TO ${quoteLiteral(`${folder(release)}/part-${file}.parquet`)}`,
      );
    }
  }
  const all = Array.from({ length: releases }, (_, release) => release);
  const scans = {
    glob: duckDbDialect.scanParquet(all.map((release) => `${folder(release)}/*.parquet`)),
    named: duckDbDialect.scanParquet(
      all.flatMap((release) =>
        Array.from({ length: files }, (_, file) => `${folder(release)}/part-${file}.parquet`),
      ),
    ),
    guarded: duckDbDialect.scanParquet(all.map((release) => ({ folder: folder(release), files }))),
  };
  await db.run("CALL enable_logging('HTTP')");
  /** The requests one query makes, by HTTP method. */
  const requestsOf = async (scan: string) => {
    await db.run('CALL truncate_duckdb_logs()');
    await db.run(`SELECT sum(x) FROM ${scan} AS t`);
    const log = await db.runAndReadAll(`SELECT message FROM duckdb_logs WHERE type = 'HTTP'`);
    const byMethod: Record<string, number> = {};
    for (const row of log.getRowObjects()) {
      const method = /'type': (\w+)/.exec(String(row.message))?.[1] ?? 'other';
      byMethod[method] = (byMethod[method] ?? 0) + 1;
    }
    return byMethod;
  };
  const total = (byMethod: Record<string, number>) =>
    Object.values(byMethod).reduce((sum, n) => sum + n, 0);
  const version = (await db.runAndReadAll('SELECT version() AS v')).getRowObjects()[0]?.v;
  console.log(`${releases} releases × ${files} files, DuckDB ${String(version)}`);
  const modes = ['glob', 'named', 'guarded'] as const;
  const later: Record<string, number[]> = { glob: [], named: [], guarded: [] };
  for (let run = 0; run <= runs; run++) {
    // Alternated, so that all meet the same state of the machine and of DuckDB's caches.
    for (const mode of modes) {
      const requests = await requestsOf(scans[mode]);
      // The later reads of the first round find the files' data cached by the first glob read.
      if (run === 0) console.log(`first query, ${mode}: ${JSON.stringify(requests)}`);
      else later[mode]!.push(total(requests));
    }
  }
  const median = (list: number[]) => [...list].sort((a, b) => a - b)[Math.floor(list.length / 2)]!;
  const [glob, named, guarded] = modes.map((mode) => median(later[mode]!));
  console.log(
    `queries after it (median of ${runs}): glob ${glob} requests, named ${named}, guarded ${guarded}`,
  );
  const ratio = (n: number) => (n / Math.max(glob!, 1)).toFixed(2);
  console.log(`named / glob: ${ratio(named!)}, guarded / glob: ${ratio(guarded!)}`);
} finally {
  await bucket.drop();
}
