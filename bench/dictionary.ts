// npm run bench:dictionary — GET /api/v1/datasets/lab-results/dictionary over bench:query's
// synthetic lake (query-lake.ts; --rows N, default 5000000, kept in --dir between runs), as it
// is now (the figures read from the catalog, where publishing stores them) against the lake
// scan each uncached request ran before (the dictionary's aggregate: rows and distinct
// patients per code, with its total), alternately, --runs times (default 5). Prints the median
// of each and their ratio, and a GET that first counts one hospital's figures over the lake (what
// a publish of one of its months adds to the ingest).
import { mkdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { lakeColumns, querySpecSchema } from '@medlake/shared';
import { buildApp } from '../server/src/app.ts';
import { datasetsRepository } from '../server/src/catalog/datasets-repository.ts';
import { usersRepository } from '../server/src/catalog/users-repository.ts';
import { loadEnv } from '../server/src/env.ts';
import { releaseFilesGlob } from '../server/src/ingest/lake-keys.ts';
import { createLogger } from '../server/src/logger.ts';
import { openPlatform } from '../server/src/platform.ts';
import { compileQuery } from '../server/src/query/compile-query.ts';
import { queryColumns } from '../server/src/query/query-columns.ts';
import { runAggregate } from '../server/src/query/run-aggregate.ts';
import { candidateReleases } from '../server/src/use-cases/queries/candidate-releases.ts';
import { requireDatasetAccess } from '../server/src/use-cases/queries/dataset-access.ts';
import { buildQueryLake } from './query-lake.ts';

const { values } = parseArgs({
  options: {
    rows: { type: 'string', default: '5000000' },
    runs: { type: 'string', default: '5' },
    dir: { type: 'string', default: path.join(tmpdir(), 'medlake-bench-dictionary') },
  },
});
const rows = Number(values.rows);
const runs = Number(values.runs);
const hospitals = 4;
const months = 12;
const rowsPerRelease = Math.ceil(rows / (hospitals * months));
const home = path.join(values.dir, `rows-${rows}`);
await mkdir(home, { recursive: true });
console.log(
  `lake: ${(rowsPerRelease * hospitals * months).toLocaleString('en-US')} rows, ${hospitals} hospitals × ${months} months, in ${home}`,
);
const lake = await buildQueryLake(home, { hospitals, months, rowsPerRelease });

const platform = await openPlatform(loadEnv({ MEDLAKE_HOME: lake.home, LOG_LEVEL: 'silent' }), {
  migrate: true,
});
const app = await buildApp({ platform, logger: createLogger('silent') });
await app.ready();
const dataset = (await datasetsRepository(platform.catalog.db).get('lab-results'))!;
const user = (await usersRepository(platform.catalog.db).byEmail('bench@example.org'))!;

/** The whole request, through the route, as a client makes it. */
async function get(url: string): Promise<number> {
  const started = performance.now();
  const response = await app.inject({
    method: 'GET',
    url,
    headers: { authorization: `Bearer ${lake.token}` },
  });
  if (response.statusCode !== 200) throw new Error(`${url}: ${response.statusCode}`);
  return (performance.now() - started) / 1000;
}
const getDictionary = () => get('/api/v1/datasets/lab-results/dictionary');
// The floor of an authenticated request: the list of datasets, a few catalog rows.
const getDatasets = () => get('/api/v1/datasets');

/** The lake scan an uncached request ran before the figures were stored (describe-dataset.ts). */
async function scanAsBefore(): Promise<number> {
  const started = performance.now();
  const access = await requireDatasetAccess(platform, user, dataset.id);
  const releases = await candidateReleases(platform, { dataset: dataset.id }, access);
  const lakeColumnsOf = lakeColumns(dataset.contract);
  const column = (role: string) => lakeColumnsOf.find((lakeColumn) => lakeColumn.role === role);
  const spec = querySpecSchema.parse({
    dataset: dataset.id,
    groupBy: [{ column: column('code')!.name, as: 'code' }],
    measures: [
      { fn: 'count' },
      { fn: 'patients' },
      ...(column('code_label')
        ? [{ fn: 'min', column: column('code_label')!.name, as: 'label' }]
        : []),
      ...(column('unit') ? [{ fn: 'min', column: column('unit')!.name, as: 'unit' }] : []),
    ],
  });
  const compiled = compileQuery(spec, {
    dialect: platform.engine.dialect,
    columns: queryColumns(dataset.contract),
    codeSets: {},
    files: {
      main: releases.map((release) => releaseFilesGlob(platform.store.locate(release.folder))),
      cohort: [],
    },
  });
  await runAggregate(platform.engine, compiled, { grouped: true, readsFiles: true });
  return (performance.now() - started) / 1000;
}

/**
 * Counting one hospital's figures, as a publish of one of its months does (over all its current
 * releases): the first request after that hospital's stored figures are gone.
 */
async function countOnce(): Promise<number> {
  await platform.catalog.db
    .deleteFrom('dictionary_scopes')
    .where('dataset_id', '=', dataset.id)
    .where('scope', '=', 'h01')
    .execute();
  return getDictionary();
}

const median = (list: number[]) => list.toSorted((a, b) => a - b)[Math.floor(list.length / 2)]!;
const measured = {
  before: [] as number[],
  after: [] as number[],
  count: [] as number[],
  floor: [] as number[],
};
try {
  // Warm-up: the page cache holds the lake, and the figures are stored.
  await scanAsBefore();
  await countOnce();
  for (let run = 0; run < runs; run += 1) {
    measured.before.push(await scanAsBefore());
    measured.after.push(await getDictionary());
    measured.count.push(await countOnce());
    measured.floor.push(await getDatasets());
  }
  const [before, after, count, floor] = [
    median(measured.before),
    median(measured.after),
    median(measured.count),
    median(measured.floor),
  ];
  const ms = (seconds: number) => `${(seconds * 1000).toFixed(1)} ms`;
  console.log(`runs: ${runs}, medians`);
  console.log(`before: the lake scan of an uncached request   ${ms(before)}`);
  console.log(`after:  GET, figures read from the catalog     ${ms(after)}`);
  console.log(`GET /api/v1/datasets, for comparison             ${ms(floor)}`);
  console.log(`ratio before / after                           ${(before / after).toFixed(1)}×`);
  console.log(`GET after counting one hospital's figures (a publish's count)  ${ms(count)}`);
} finally {
  await app.close();
  await platform.close();
}
