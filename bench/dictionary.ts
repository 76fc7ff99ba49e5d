// npm run bench:dictionary — GET /api/v1/datasets/lab-results/dictionary over bench:query's
// synthetic lake (query-lake.ts; --rows N, default 5000000, kept in --dir between runs), as it
// is now (the figures read from the catalog, where publishing stores them) against the lake
// scan each uncached request ran before (the dictionary's aggregate: rows and distinct
// patients per code, with its total), alternately, --runs times (default 5). Prints the median
// of each and their ratio, and a GET that first counts one hospital's figures (from its
// releases' pairs files).
//
// Then the count a publish runs for one more month of h01 (--hospitals N, default 4, each with
// the 12 months of one year): as it ran before, over the rows of every release counted,
// against now, from each release's pairs file (dictionary-pairs.ts) with the new month's
// written first, alternately, with the rows (or pairs) and bytes each reads; once for h01's own
// scope, once with the whole lake as one scope (hospitals sharing an id space).
import { mkdir, stat } from 'node:fs/promises';
import { loadavg, tmpdir } from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { lakeColumns, querySpecSchema } from '@medlake/shared';
import { buildApp } from '../server/src/app.ts';
import { datasetsRepository } from '../server/src/catalog/datasets-repository.ts';
import { dictionaryPairsRepository } from '../server/src/catalog/dictionary-pairs-repository.ts';
import { usersRepository } from '../server/src/catalog/users-repository.ts';
import { loadEnv } from '../server/src/env.ts';
import { releasesRepository } from '../server/src/catalog/releases-repository.ts';
import {
  releaseFileLocations,
  releaseFilesGlob,
  releaseFilesIn,
  releaseFolder,
} from '../server/src/ingest/lake-keys.ts';
import { createLogger } from '../server/src/logger.ts';
import { openPlatform } from '../server/src/platform.ts';
import { compileQuery } from '../server/src/query/compile-query.ts';
import { queryColumns } from '../server/src/query/query-columns.ts';
import { runAggregate } from '../server/src/query/run-aggregate.ts';
import { candidateReleases } from '../server/src/use-cases/queries/candidate-releases.ts';
import { requireDatasetAccess } from '../server/src/use-cases/queries/dataset-access.ts';
import {
  basisOf,
  countFigures,
  countFiguresAtPublish,
} from '../server/src/use-cases/queries/dictionary-figures.ts';
import { dictionaryPairsKey } from '../server/src/ingest/release-pairs.ts';
import { rowsSource } from '../server/src/use-cases/queries/dictionary-pairs.ts';
import { buildQueryLake } from './query-lake.ts';

const { values } = parseArgs({
  options: {
    rows: { type: 'string', default: '5000000' },
    runs: { type: 'string', default: '5' },
    hospitals: { type: 'string', default: '4' },
    dir: { type: 'string', default: path.join(tmpdir(), 'medlake-bench-dictionary') },
  },
});
const rows = Number(values.rows);
const runs = Number(values.runs);
const hospitals = Number(values.hospitals);
// The synthetic lake's months are those of one year.
const months = 12;
const rowsPerRelease = Math.ceil(rows / (hospitals * months));
// Lakes of 4 hospitals keep the name they had before --hospitals.
const shape = hospitals === 4 ? '' : `-${hospitals}-hospitals`;
const home = path.join(values.dir, `rows-${rows}${shape}`);
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

type Dataset = typeof dataset;
type Release = {
  id: string;
  hospitalId: string;
  month: string;
  folder: string;
  fileCount: number;
};

/**
 * One more month at publish, two ways: the count that ran before, over the rows of every
 * release of the scope, and the count now, which writes the new month's pairs file and reads
 * every release's. `counted` is the dataset as the count sees it (its id space decides the scope).
 */
function publishCase(counted: Dataset, scope: string, releases: Release[]) {
  const newMonth = releases.filter((release) => release.hospitalId === 'h01').at(-1)!;
  const hospitalsCounted = [...new Set(releases.map((release) => release.hospitalId))].sort();
  return {
    releases,
    async before() {
      const started = performance.now();
      const figures = await countFigures(
        platform.engine,
        {
          scope,
          basis: basisOf(
            counted,
            scope,
            releases.map((release) => release.id),
          ),
          hospitals: hospitalsCounted,
        },
        rowsSource(
          platform.engine,
          counted.contract,
          releases.flatMap((release) => releaseFileLocations(platform.store, release)),
        )!,
      );
      return { seconds: (performance.now() - started) / 1000, figures };
    },
    async after() {
      await platform.catalog.db
        .deleteFrom('dictionary_release_pairs')
        .where('release_id', '=', newMonth.id)
        .execute();
      const started = performance.now();
      const figures = await countFiguresAtPublish(platform, counted, newMonth);
      const seconds = (performance.now() - started) / 1000;
      if (!figures) throw new Error('the count at publish failed');
      // As the publishing transaction records it (not part of the count's cost).
      await dictionaryPairsRepository(platform.catalog.db).record(
        figures.pairsWritten,
        counted.contractVersion,
      );
      return { seconds, figures };
    },
    /** The part of the count now that grows with the scope's releases: their pairs read. */
    async pairsOnly() {
      const started = performance.now();
      const figures = await countFiguresAtPublish(platform, counted, newMonth);
      if (!figures || figures.pairsWritten.length > 0) throw new Error('pairs were written');
      return (performance.now() - started) / 1000;
    },
  };
}

/** The dataset's current releases (of these hospitals), oldest first per hospital. */
async function currentReleases(hospitalIds?: string[]): Promise<Release[]> {
  const releases = await releasesRepository(platform.catalog.db).locations(
    dataset.id,
    undefined,
    hospitalIds ? { hospitals: hospitalIds } : {},
  );
  return releases.map((release) => ({
    id: release.id,
    hospitalId: release.hospitalId,
    month: release.month,
    folder: releaseFolder({ ...release, releaseId: release.id }),
    fileCount: release.fileCount,
  }));
}

/** The bytes of files in the local store (the bench lake is on local disk). */
async function bytesOf(keys: readonly string[]): Promise<number> {
  let total = 0;
  for (const key of keys) total += (await stat(platform.store.locate(key))).size;
  return total;
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
  console.log(`GET after counting one hospital's figures (from its pairs files)  ${ms(count)}`);

  // One more month of h01 (its 12 months), and the same where the whole lake is one scope (as
  // where hospitals share an id space): each time the same figures both ways, then the two
  // counts alternately.
  const shared = {
    ...dataset,
    contract: { ...dataset.contract, patientIdSpace: 'shared' as const },
  };
  const cases = [
    {
      title: 'one more month of h01',
      run: publishCase(dataset, 'h01', await currentReleases(['h01'])),
    },
    {
      title: 'one more month of h01 where all hospitals share an id space (one scope)',
      run: publishCase(shared, '*', await currentReleases()),
    },
  ];
  const mb = (bytes: number) => `${(bytes / 1e6).toFixed(1)} MB`;
  const sortedJson = (list: readonly unknown[]) => list.map((x) => JSON.stringify(x)).sort();
  for (const { title, run } of cases) {
    const [first, second] = [await run.before(), await run.after()];
    if (
      JSON.stringify(sortedJson(first.figures.rows)) !==
        JSON.stringify(sortedJson(second.figures.rows)) ||
      JSON.stringify(sortedJson(first.figures.patients)) !==
        JSON.stringify(sortedJson(second.figures.patients))
    ) {
      throw new Error(`${title}: the count from pairs files differs from the count over rows`);
    }
    const times = { before: [] as number[], after: [] as number[], pairsOnly: [] as number[] };
    for (let attempt = 0; attempt < runs; attempt += 1) {
      times.before.push((await run.before()).seconds);
      times.after.push((await run.after()).seconds);
      times.pairsOnly.push(await run.pairsOnly());
    }
    const rowKeys: string[] = [];
    for (const release of run.releases) {
      for (const name of await releaseFilesIn(platform.store, release.folder)) {
        rowKeys.push(`${release.folder}/${name}`);
      }
    }
    const pairKeys = run.releases.map((release) => dictionaryPairsKey(release.folder));
    const [pairs] = await platform.engine.rows({
      sql: `SELECT count(*) AS n FROM ${platform.engine.dialect.scanParquet(pairKeys.map((key) => platform.store.locate(key)))} AS p`,
      params: [],
    });
    const [publishBefore, publishAfter] = [median(times.before), median(times.after)];
    console.log(
      `\n${title}: ${run.releases.length} releases counted (load ${loadavg()
        .map((x) => x.toFixed(1))
        .join(' ')})`,
    );
    console.log(
      `before: count over the rows of every release   ${ms(publishBefore)}  (${(rowsPerRelease * run.releases.length).toLocaleString('en-US')} rows, ${mb(await bytesOf(rowKeys))})`,
    );
    console.log(
      `after:  new month's pairs written, all read     ${ms(publishAfter)}  (${Number(pairs?.n).toLocaleString('en-US')} pairs, ${mb(await bytesOf(pairKeys))})`,
    );
    console.log(`now, with the new month's pairs already written ${ms(median(times.pairsOnly))}`);
    console.log(
      `ratio before / after                           ${(publishBefore / publishAfter).toFixed(1)}×`,
    );
  }
} finally {
  await app.close();
  await platform.close();
}
