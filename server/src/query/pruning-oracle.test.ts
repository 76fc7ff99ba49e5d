import { readFile } from 'node:fs/promises';
import {
  querySpecSchema,
  type CohortCriterion,
  type Filter,
  type Group,
  type QuerySpec,
  type QuerySpecInput,
} from '@medlake/shared';
import fc from 'fast-check';
import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestPlatform, testActor, type TestPlatform } from '../../test/helper.ts';
import { contractFile, ingest } from '../../test/ingest-helpers.ts';
import { testSparkUrl } from '../../test/spark.ts';
import type { CatalogKind } from '../catalog/catalog.ts';
import { releaseFilesRepository } from '../catalog/release-files-repository.ts';
import { releasesRepository } from '../catalog/releases-repository.ts';
import { createSparkEngine } from '../engines/spark/spark-engine.ts';
import type { QueryEngine } from '../engines/types.ts';
import { releaseFilesGlob, releaseFolder } from '../ingest/lake-keys.ts';
import type { DatasetAccess } from '../policy.ts';
import { addHospital, saveDataset } from '../use-cases/manage-datasets.ts';
import { planAndCompile } from '../use-cases/queries/run-query-job.ts';
import { compileQuery, type CompiledQuery } from './compile-query.ts';
import { queryColumns } from './query-columns.ts';
import { runAggregate } from './run-aggregate.ts';

/**
 * Issue 22's planner reads only the files that can match: the hospitals and months the catalog
 * lists (catalogBounds), the files whose codes can hold the query's (catalogCodes and the
 * catalog's `holding`), and what planQuery keeps of them. What matters to a researcher is the
 * other half of that promise: pruning never drops a row that matches. Here every answer of
 * the real path (planAndCompile, the catalog on PGlite, DuckDB over a lake the real ingest
 * wrote) is checked against an oracle that prunes nothing: the same compiled SQL over every
 * file of every release the query may read, with "the last N months" worked out here.
 *
 * The lake is made for tight bounds: three hospitals, four upload months (one hospital missing
 * the latest but one, another alone in the latest), one month uploaded twice (the replaced
 * release keeps a code the current one lacks), every release cut into several files by code
 * with one common code cut across files at its event-date quantiles, event dates on month
 * edges and outside their upload month, codes that share prefixes and sit at each other's
 * range edges. In the catalog one file is marked as listing too many codes to tell, and one
 * release has no file statistics at all (published before they were kept).
 */

const dataset = 'pruning';
const hospitals = ['east', 'north', 'south'] as const;

/** Codes in the lake, in text order: '1-8' < '10-1' ('-' sorts before '0'). */
const lakeCodes = [
  '1-8',
  '10-1',
  '2085-9',
  '2093-3',
  '20565-8',
  '2571-8',
  '8302-2',
  '8462-4',
  '8480-6',
] as const;
/** Only in the replaced release of south's March; the current one has 10-1 instead. */
const replacedOnlyCode = 'X-1';
/** Codes no release holds: a release and every file of it can be left out for them. */
const absentCodes = ['0-0', '2093-4', 'zz'];
const askedCodes = [...lakeCodes, replacedOnlyCode, ...absentCodes];

/** Upload months; east skips March and is the only one with April. */
const uploads: Array<{ hospital: (typeof hospitals)[number]; month: string; version?: number }> = [
  { hospital: 'north', month: '2024-01' },
  { hospital: 'north', month: '2024-02' },
  { hospital: 'north', month: '2024-03' },
  { hospital: 'south', month: '2024-01' },
  { hospital: 'south', month: '2024-02' },
  { hospital: 'south', month: '2024-03', version: 1 },
  { hospital: 'south', month: '2024-03', version: 2 },
  { hospital: 'east', month: '2024-02' },
  { hospital: 'east', month: '2024-04' },
];
const months = ['2023-12', '2024-01', '2024-02', '2024-03', '2024-04', '2024-05'];

/** A small deterministic generator, so that the lake is the same on every run. */
function numbers(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (Math.imul(state, 1_664_525) + 1_013_904_223) >>> 0;
    return state / 2 ** 32;
  };
}

/** The month before and after `month` (YYYY-MM), and its last day. */
function monthEdges(month: string): { previousLastDay: string; lastDay: string; next: string } {
  const [year, number] = month.split('-').map(Number) as [number, number];
  const day = (date: Date) => date.toISOString().slice(0, 10);
  return {
    previousLastDay: day(new Date(Date.UTC(year, number - 1, 0))),
    lastDay: day(new Date(Date.UTC(year, number, 0))),
    next: day(new Date(Date.UTC(year, number, 1))),
  };
}

const header =
  'MRN,SSN,FIRST,LAST,BIRTHDATE,DEATHDATE,GENDER,RACE,ETHNICITY,ADDRESS,CITY,STATE,ZIP,DATE,ENCOUNTER,CATEGORY,CODE,DESCRIPTION,VALUE,UNITS,TYPE';

/**
 * One upload's CSV: about a third of its rows one common code (cut across files by date),
 * the rest spread over the other codes; event times on the upload month's edges and just
 * outside it; a few results without a value.
 */
function exportOf(upload: (typeof uploads)[number]): { text: string; rows: number } {
  const random = numbers(1 + uploads.indexOf(upload) * 7919);
  const { previousLastDay, lastDay, next } = monthEdges(upload.month);
  const times = [
    `${previousLastDay}T23:30:00Z`,
    `${upload.month}-01T00:00:00Z`,
    `${upload.month}-01T08:00:00Z`,
    `${upload.month}-15T12:00:00Z`,
    `${lastDay}T00:00:00Z`,
    `${lastDay}T23:59:59Z`,
    `${next}T00:00:00Z`,
  ];
  const replaced = upload.hospital === 'south' && upload.month === '2024-03';
  const codes = lakeCodes.filter((code) => !(replaced && upload.version === 2 && code === '1-8'));
  const extra = replaced ? (upload.version === 1 ? replacedOnlyCode : '10-1') : undefined;
  const rows = 150 + Math.floor(random() * 120);
  const lines = [header];
  for (let row = 0; row < rows; row += 1) {
    const pick = random();
    const code =
      pick < 0.35
        ? '8480-6'
        : extra && pick < 0.42
          ? extra
          : codes[Math.floor(random() * codes.length)]!;
    lines.push(csvRow(random, { hospital: upload.hospital, row, code, times }));
  }
  return { text: `${lines.join('\n')}\n`, rows };
}

/** One result in the Synthea export's layout, with a made-up patient of the hospital. */
function csvRow(
  random: () => number,
  at: { hospital: string; row: number; code: string; times: readonly string[] },
): string {
  const { hospital, row, code } = at;
  const patient = `${hospital}-${Math.floor(random() * 14)}`;
  const sex = Number(patient.split('-')[1]) % 2 === 0 ? 'F' : 'M';
  const time = at.times[Math.floor(random() * at.times.length)]!;
  const value = random() < 0.05 ? '' : String(Math.round(random() * 2000) / 10);
  return [
    patient,
    `999-00-${String(row).padStart(4, '0')}`,
    'Alexis',
    'Testperson',
    '1970-05-05',
    '',
    sex,
    'white',
    'nonhispanic',
    '1 Main Street',
    'Boston',
    'Massachusetts',
    '02134',
    time,
    `${patient}-encounter-${row % 5}`,
    'laboratory',
    code,
    `Test ${code}`,
    value,
    'mg/dL',
    'numeric',
  ].join(',');
}

/**
 * A month of a dataset whose code column holds numbers (`type` integer or double, as a
 * contract may declare): 12 the common code, cut across files; the others around it.
 */
function numericExport(month: string): string {
  const random = numbers(month.length * 31 + Number(month.slice(-2)));
  const lines = [header];
  for (let row = 0; row < 240; row += 1) {
    const code = random() < 0.4 ? '12' : ['7', '30', '100', '250'][Math.floor(random() * 4)]!;
    lines.push(csvRow(random, { hospital: 'north', row, code, times: [`${month}-02T08:00:00Z`] }));
  }
  return `${lines.join('\n')}\n`;
}

type Release = { id: string; dataset: string; hospital: string; month: string };

/** A platform with the lake below published, and what the tests need to know of it. */
type Lake = {
  platform: TestPlatform;
  /** Every release published, the replaced one included. */
  published: Release[];
  /** The current release of each hospital's month. */
  current: Release[];
  /** The rows uploaded to the current releases of the main dataset. */
  rowsUploaded: number;
  columnsOf: Map<string, ReturnType<typeof queryColumns>>;
  /** Each release's files, as the catalog lists them with the release. */
  filesByRelease: Map<string, readonly string[]>;
};

/** The lake, with its catalog on PGlite; the last describe builds one on PostgreSQL. */
let lake: Lake;

async function buildLake(kind: CatalogKind): Promise<Lake> {
  // Files of about 2 KB: each release of a few hundred rows is cut into several by code.
  const platform = await createTestPlatform(kind, { MEDLAKE_PARQUET_FILE_SIZE: '2KB' });
  const built: Lake = {
    platform,
    published: [],
    current: [],
    rowsUploaded: 0,
    columnsOf: new Map(),
    filesByRelease: new Map(),
  };
  for (const id of hospitals)
    await addHospital(platform, testActor, { id, name: `Hospital ${id}` });
  await addDataset(built, dataset);
  const currentByPartition = new Map<string, { release: Release; rows: number }>();
  for (const upload of uploads) {
    const { text, rows } = exportOf(upload);
    const release = await publish(built, { dataset, ...upload }, text);
    currentByPartition.set(`${upload.hospital}/${upload.month}`, { release, rows });
  }
  for (const type of ['integer', 'double'] as const) {
    await addDataset(built, `${dataset}-${type}`, type);
    for (const month of ['2024-01', '2024-02']) {
      const release = await publish(
        built,
        { dataset: `${dataset}-${type}`, hospital: 'north', month },
        numericExport(month),
      );
      currentByPartition.set(`${type}/${month}`, { release, rows: 0 });
    }
  }
  built.current = [...currentByPartition.values()].map(({ release }) => release);
  built.rowsUploaded = [...currentByPartition.values()].reduce((sum, { rows }) => sum + rows, 0);

  const { db } = platform.catalog;
  const files = await releaseFilesRepository(db).of(built.published.map((r) => r.id));
  const release = (hospital: string, month: string) =>
    built.current.find(
      (r) => r.dataset === dataset && r.hospital === hospital && r.month === month,
    )!;
  const northFebruary = release('north', '2024-02');
  // What the catalog records of a file with more codes than it lists: codes unknown.
  const unlisted = files.get(northFebruary.id)?.[1]?.file;
  if (!unlisted) throw new Error('north February was written as one file');
  await sql`update release_files set codes = null
    where release_id = ${northFebruary.id} and file = ${unlisted}`.execute(db);
  // A release published before the catalog kept file statistics.
  await sql`delete from release_files where release_id = ${release('south', '2024-01').id}`.execute(
    db,
  );
  return built;
}

/** A dataset of the Synthea export's contract, with its event dates kept as they are. */
async function addDataset(
  into: Lake,
  name: string,
  codeType?: 'integer' | 'double',
): Promise<void> {
  const contract = JSON.parse(await readFile(contractFile('synthea-observations'), 'utf8'));
  type Column = { name: string; type?: string };
  const saved = await saveDataset(into.platform, {
    ...contract,
    name,
    title: name,
    // A limited data set's dates, kept to the second: bounds fall on exact times.
    datePolicy: 'keep',
    columns: (contract.columns as Column[]).map((column) =>
      column.name === 'code' && codeType ? { ...column, type: codeType } : column,
    ),
  });
  into.columnsOf.set(name, queryColumns(saved.contract));
}

async function publish(
  into: Lake,
  upload: { dataset: string; hospital: string; month: string },
  text: string,
): Promise<Release> {
  const { platform } = into;
  const result = await ingest(platform, { text, ...upload });
  if (result.status !== 'published') throw new Error(JSON.stringify(result));
  const release = { id: result.releaseId, ...upload };
  into.published.push(release);
  const stored = await releasesRepository(platform.catalog.db).get(release.id);
  into.filesByRelease.set(release.id, stored?.files ?? []);
  return release;
}

beforeAll(async () => {
  lake = await buildLake('pglite');
}, 240_000);

afterAll(async () => {
  await lake?.platform.dispose();
});

/** The aggregate or row answer of a compiled query: rows as sorted text, numbers rounded. */
type Answer = string[];

function asText(rows: ReadonlyArray<Record<string, unknown>>): Answer {
  return rows
    .map((row) =>
      JSON.stringify(row, (_key, value: unknown) =>
        typeof value === 'number'
          ? Number(value.toPrecision(12))
          : typeof value === 'bigint'
            ? Number(value)
            : value,
      ),
    )
    .sort();
}

async function answerOf(
  engine: QueryEngine,
  spec: QuerySpec,
  compiled: CompiledQuery,
  readsFiles: boolean,
): Promise<Answer> {
  if (spec.select) return readsFiles ? asText(await engine.rows(compiled)) : [];
  const { groups, total } = await runAggregate(engine, compiled, {
    grouped: spec.groupBy.length > 0,
    readsFiles,
  });
  // The total of a query that reads nothing is the empty one; its other measures are null.
  const counts = (row: Record<string, unknown>) => ({
    rows: Number(row.__rows ?? 0),
    patients: Number(row.__patients ?? 0),
  });
  const shown = spec.groupBy.length > 0 ? groups : [];
  return [...asText(shown), JSON.stringify(counts(total))];
}

/** "The latest N upload months among the releases read", written here for the oracle. */
function withLatestMonths(filter: Filter, monthsRead: readonly string[]): Filter {
  if ('and' in filter) return { and: filter.and.map((f) => withLatestMonths(f, monthsRead)) };
  if ('or' in filter) return { or: filter.or.map((f) => withLatestMonths(f, monthsRead)) };
  if ('not' in filter) return { not: withLatestMonths(filter.not, monthsRead) };
  if (filter.op !== 'last_months') return filter;
  const newestFirst = [...new Set(monthsRead)].sort().reverse();
  const latest = newestFirst.slice(0, filter.months);
  // No month read: nothing is among the latest.
  return latest.length === 0
    ? { column: 'month', op: 'in', values: ['0000-01'] }
    : { column: 'month', op: 'in', values: latest };
}

type Comparison = {
  pruned: Answer;
  oracle: Answer;
  /** Files the real plan reads, and files the oracle reads (main query and criteria). */
  filesRead: number;
  filesAll: number;
};

/**
 * The spec answered by the real path and by the oracle: every file of every release it may
 * read (those named, or the current ones, within the grant), for the main query and for each
 * cohort criterion alike.
 */
async function compare(
  input: QuerySpecInput,
  access: DatasetAccess,
  engine?: QueryEngine,
  from: Lake = lake,
): Promise<Comparison> {
  const { platform, published, current, columnsOf, filesByRelease } = from;
  const spec = querySpecSchema.parse(input);
  const on = engine ? { ...platform, engine } : platform;
  const columns = columnsOf.get(spec.dataset)!;
  const { plan, compiled, context } = await planAndCompile(on, spec, access, columns);
  const named = spec.releases && new Set(spec.releases);
  const readable = (named ? published.filter((r) => named.has(r.id)) : current).filter(
    (release) =>
      release.dataset === spec.dataset &&
      (!access.hospitals || access.hospitals.includes(release.hospital)),
  );
  const everything = readable.map((release) =>
    releaseFilesGlob(
      platform.store.locate(
        releaseFolder({
          datasetId: release.dataset,
          hospitalId: release.hospital,
          month: release.month,
          releaseId: release.id,
        }),
      ),
    ),
  );
  const monthsRead = readable.map((release) => release.month);
  const resolve = (filter: Filter) => withLatestMonths(filter, monthsRead);
  const unpruned: QuerySpec = {
    ...spec,
    ...(spec.where ? { where: resolve(spec.where) } : {}),
    ...(spec.cohort
      ? {
          cohort: {
            ...spec.cohort,
            criteria: spec.cohort.criteria.map((criterion) => ({
              ...criterion,
              where: resolve(criterion.where),
            })),
          },
        }
      : {}),
  };
  const oracleCompiled = compileQuery(unpruned, {
    ...context,
    files: {
      main: everything,
      cohort: (spec.cohort?.criteria ?? []).map(() => everything),
    },
  });
  const reads = [plan.main, ...plan.cohort].flat();
  const filesOf = (id: string) => filesByRelease.get(id)?.length ?? 0;
  return {
    pruned: await answerOf(on.engine, spec, compiled, plan.main.length > 0),
    oracle: await answerOf(on.engine, unpruned, oracleCompiled, everything.length > 0),
    filesRead: reads.reduce((sum, r) => sum + (r.readFiles?.length ?? filesOf(r.id)), 0),
    filesAll: (1 + plan.cohort.length) * readable.reduce((sum, r) => sum + filesOf(r.id), 0),
  };
}

const everyone: DatasetAccess = { level: 'aggregate', hospitals: null, holder: 'user:oracle' };

const counting = {
  groupBy: [],
  measures: [{ fn: 'count' as const }, { fn: 'patients' as const }],
};

describe('pruning against an oracle that reads every file', () => {
  it('starts from a lake of several files per release, all of whose rows can be read', async () => {
    const ours = lake.current.filter((release) => release.dataset === dataset);
    const files = await releaseFilesRepository(lake.platform.catalog.db).of(ours.map((r) => r.id));
    const filesPerRelease = [...files.values()].map((list) => list.length);
    expect(Math.min(...filesPerRelease)).toBeGreaterThan(1);
    // The common code is in more than one file of some release: cut at its event dates.
    const spanning = [...files.values()].filter(
      (list) => list.filter((file) => file.codes?.includes('8480-6')).length > 1,
    );
    expect(spanning.length).toBeGreaterThan(0);
    const { oracle } = await compare({ dataset, ...counting }, everyone);
    expect(oracle.at(-1)).toBe(JSON.stringify({ rows: lake.rowsUploaded, patients: 42 }));
  });
});

/** A few values of each kind, chosen to sit on the lake's edges. */
const hospitalNames = [...hospitals, 'west'];
const prefixes = ['1', '10', '2', '20', '209', '2093-3', '8', '84', '848', 'X', 'z'];
const times = [
  '2024-01-01',
  '2024-01-31',
  '2024-01-31T23:30:00Z',
  '2024-02-01',
  '2024-02-01T00:00:00Z',
  '2024-02-15T12:00:00Z',
  '2024-02-29',
  '2024-02-29T23:59:59Z',
  '2024-03-01',
  '2024-03-31T23:59:59Z',
  '2024-04-01T00:00:00Z',
  '2024-04-30',
  '2024-05-01',
];

const code = fc.constantFrom(...askedCodes);
const codeList = fc.uniqueArray(code, { minLength: 1, maxLength: 4 });
const order = fc.constantFrom('lt' as const, 'lte' as const, 'gt' as const, 'gte' as const);

const onCodes: fc.Arbitrary<Filter> = fc.oneof(
  {
    arbitrary: fc.record({
      column: fc.constant('code'),
      op: fc.constant('eq' as const),
      value: code,
    }),
    weight: 3,
  },
  fc.record({ column: fc.constant('code'), op: fc.constant('ne' as const), value: code }),
  {
    arbitrary: fc.record({
      column: fc.constant('code'),
      op: fc.constant('in' as const),
      values: codeList,
    }),
    weight: 2,
  },
  fc.record({ column: fc.constant('code'), op: fc.constant('not_in' as const), values: codeList }),
  { arbitrary: fc.record({ op: fc.constant('code' as const), codes: codeList }), weight: 3 },
  fc.record({
    op: fc.constant('code_set' as const),
    name: fc.constantFrom('lipid-panel', 'blood-pressure', 'body-measurements', 'glycemic-control'),
  }),
  fc.record({
    column: fc.constant('code'),
    op: fc.constant('starts_with' as const),
    value: fc.constantFrom(...prefixes),
  }),
  fc.record({ column: fc.constant('code'), op: order, value: code }),
  fc.record({
    column: fc.constant('code'),
    op: fc.constant('between' as const),
    min: code,
    max: code,
  }),
);

const onHospitals: fc.Arbitrary<Filter> = fc.oneof(
  fc.record({
    column: fc.constant('hospital'),
    op: fc.constantFrom('eq' as const, 'ne' as const),
    value: fc.constantFrom(...hospitalNames),
  }),
  fc.record({
    column: fc.constant('hospital'),
    op: fc.constantFrom('in' as const, 'not_in' as const),
    values: fc.uniqueArray(fc.constantFrom(...hospitalNames), { minLength: 1, maxLength: 3 }),
  }),
  fc.record({
    column: fc.constant('hospital'),
    op: fc.constant('starts_with' as const),
    value: fc.constantFrom('n', 'so', 'e', 'w'),
  }),
  fc.record({
    column: fc.constant('hospital'),
    op: order,
    value: fc.constantFrom(...hospitalNames),
  }),
);

const month = fc.constantFrom(...months);
const onMonths: fc.Arbitrary<Filter> = fc.oneof(
  fc.record({
    column: fc.constant('month'),
    op: fc.constantFrom(
      'eq' as const,
      'ne' as const,
      'lt' as const,
      'lte' as const,
      'gt' as const,
      'gte' as const,
    ),
    value: month,
  }),
  fc.record({
    column: fc.constant('month'),
    op: fc.constantFrom('in' as const, 'not_in' as const),
    values: fc.uniqueArray(month, { minLength: 1, maxLength: 3 }),
  }),
  fc.record({
    column: fc.constant('month'),
    op: fc.constant('between' as const),
    min: month,
    max: month,
  }),
  fc
    .oneof(
      fc.record({ from: month }),
      fc.record({ to: month }),
      fc.record({ from: month, to: month }),
    )
    .map((range) => ({ op: 'months' as const, ...range })),
  fc.integer({ min: 1, max: 5 }).map((count) => ({ op: 'last_months' as const, months: count })),
);

const time = fc.constantFrom(...times);
const onOthers: fc.Arbitrary<Filter> = fc.oneof(
  fc
    .oneof(fc.record({ from: time }), fc.record({ to: time }), fc.record({ from: time, to: time }))
    .map((range) => ({ op: 'date_range' as const, ...range })),
  fc.record({ column: fc.constant('observed_at'), op: order, value: time }),
  fc.record({
    column: fc.constant('sex'),
    op: fc.constant('eq' as const),
    value: fc.constantFrom('F', 'M'),
  }),
  fc
    .tuple(fc.integer({ min: 0, max: 200 }), fc.integer({ min: 0, max: 120 }))
    .map(([min, span]) => ({ column: 'value', op: 'between' as const, min, max: min + span })),
  fc.record({
    column: fc.constant('value'),
    op: fc.constantFrom('is_null' as const, 'not_null' as const),
  }),
);

const condition: fc.Arbitrary<Filter> = fc.oneof(
  { arbitrary: onCodes, weight: 4 },
  { arbitrary: onHospitals, weight: 2 },
  { arbitrary: onMonths, weight: 2 },
  { arbitrary: onOthers, weight: 2 },
);

/** Filters nested up to `depth` levels of and, or and not. */
function filterOf(depth: number): fc.Arbitrary<Filter> {
  if (depth === 0) return condition;
  const inner = filterOf(depth - 1);
  return fc.oneof(
    { arbitrary: condition, weight: 2 },
    {
      arbitrary: fc.array(inner, { minLength: 1, maxLength: 3 }).map((and) => ({ and })),
      weight: 3,
    },
    { arbitrary: fc.array(inner, { minLength: 1, maxLength: 3 }).map((or) => ({ or })), weight: 2 },
    { arbitrary: inner.map((not) => ({ not })), weight: 1 },
  );
}

const criterion: fc.Arbitrary<CohortCriterion> = fc.record(
  {
    where: filterOf(2),
    from: time,
    to: time,
    minRows: fc.integer({ min: 1, max: 3 }),
    exclude: fc.boolean(),
  },
  { requiredKeys: ['where', 'minRows', 'exclude'] },
);

const grouping = fc.subarray<Group>([
  { column: 'hospital' },
  { column: 'month' },
  { column: 'code' },
  { column: 'sex' },
  { column: 'observed_at', bucket: 'month' },
]);

/** A spec and the access it runs with: aggregates for anyone, rows for row-level users. */
const asked = fc
  .record({
    where: fc.option(filterOf(3), { nil: undefined, freq: 6 }),
    cohort: fc.option(
      fc.record({
        match: fc.constantFrom('all' as const, 'any' as const),
        criteria: fc.array(criterion, { minLength: 1, maxLength: 2 }),
      }),
      { nil: undefined, freq: 3 },
    ),
    groupBy: grouping,
    rows: fc.boolean(),
    named: fc.option(fc.integer({ min: 1, max: 2 ** 20 }), { nil: undefined, freq: 5 }),
    hospitals: fc.constantFrom<string[] | null>(null, null, ['north', 'east'], ['south']),
  })
  .map(({ where, cohort, groupBy, rows, named, hospitals: granted }) => {
    // Named releases: some of all those published, the replaced one among them or not.
    const releases =
      named === undefined
        ? undefined
        : lake.published
            .filter((release) => release.dataset === dataset)
            .filter((_, index) => (named >> index) % 2 === 1)
            // Naming a release outside the grant is refused whole (tested elsewhere).
            .filter((release) => !granted || granted.includes(release.hospital))
            .map((release) => release.id);
    const spec: QuerySpecInput = {
      dataset,
      ...(where ? { where } : {}),
      ...(cohort ? { cohort } : {}),
      ...(releases && releases.length > 0 ? { releases } : {}),
      ...(rows
        ? { select: ['patient', 'hospital', 'month', 'code', 'observed_at', 'value'] }
        : {
            groupBy,
            measures: [
              { fn: 'count' as const },
              { fn: 'patients' as const },
              { fn: 'min' as const, column: 'value' },
              { fn: 'max' as const, column: 'observed_at' },
            ],
          }),
    };
    const access: DatasetAccess = {
      level: rows ? 'row' : 'aggregate',
      hospitals: granted,
      holder: 'user:oracle',
    };
    return { spec, access };
  });

describe('pruning never drops a matching row', () => {
  it('property: every random query answers as the oracle that reads every file', async () => {
    let pruning = 0;
    let matching = 0;
    await fc.assert(
      fc.asyncProperty(asked, async ({ spec, access }) => {
        const { pruned, oracle, filesRead, filesAll } = await compare(spec, access);
        expect(pruned).toEqual(oracle);
        if (filesRead < filesAll) pruning += 1;
        if (oracle.some((row) => !row.startsWith('{"rows":0,'))) matching += 1;
      }),
      { numRuns: 150, seed: 22 },
    );
    // The property held where files were left out and where rows matched, not only trivially.
    expect(pruning).toBeGreaterThan(40);
    expect(matching).toBeGreaterThan(40);
  }, 240_000);
});

describe('a code column that holds numbers', () => {
  it.each([
    ['double', { column: 'code', op: 'eq', value: 12 }],
    ['double', { op: 'code', codes: ['12'] }],
    ['integer', { op: 'code', codes: ['012'] }],
    ['integer', { column: 'code', op: 'in', values: [12, 30] }],
  ] as const)('finds every row of %s codes for %j', async (type, where) => {
    const { pruned, oracle } = await compare(
      { dataset: `${dataset}-${type}`, where: where as Filter, ...counting },
      everyone,
    );
    expect(oracle.at(-1)).not.toBe(JSON.stringify({ rows: 0, patients: 0 }));
    expect(pruned).toEqual(oracle);
  });
});

/** Cases random search may miss, each where a wrong bound would lose rows. */
const handPicked: Array<{
  name: string;
  spec: Omit<QuerySpecInput, 'dataset' | 'measures'>;
  access?: DatasetAccess;
  /** The answer has matching rows (most cases), or none (the code of no current release). */
  empty?: boolean;
}> = [
  {
    name: 'the code cut across files at its dates, up to a month edge',
    spec: {
      where: {
        and: [
          { column: 'code', op: 'eq', value: '8480-6' },
          { op: 'date_range', from: '2024-01-31T23:30:00Z', to: '2024-02-01' },
        ],
      },
    },
  },
  {
    name: 'codes next to each other in text order',
    spec: { where: { column: 'code', op: 'between', min: '1-8', max: '10-1' } },
  },
  {
    name: 'not a code',
    spec: { where: { not: { column: 'code', op: 'eq', value: '8480-6' } } },
  },
  {
    name: 'a code or a hospital',
    spec: {
      where: {
        or: [
          { column: 'code', op: 'eq', value: '2093-3' },
          { column: 'hospital', op: 'eq', value: 'east' },
        ],
      },
    },
  },
  {
    name: 'a prefix of codes',
    spec: { where: { column: 'code', op: 'starts_with', value: '20' } },
  },
  {
    name: 'a code set outside one hospital',
    spec: {
      where: {
        and: [
          { op: 'code_set', name: 'lipid-panel' },
          { not: { column: 'hospital', op: 'eq', value: 'north' } },
        ],
      },
    },
  },
  {
    name: 'a cohort criterion reading a month the main filter leaves out',
    spec: {
      where: { column: 'month', op: 'eq', value: '2024-03' },
      cohort: {
        criteria: [
          {
            where: {
              and: [
                { column: 'code', op: 'eq', value: '2093-3' },
                { column: 'month', op: 'eq', value: '2024-01' },
              ],
            },
          },
        ],
      },
    },
  },
  {
    name: 'patients without a code in the latest month, counted over every month',
    spec: {
      cohort: {
        criteria: [
          {
            where: {
              and: [
                { column: 'code', op: 'eq', value: '8462-4' },
                { op: 'last_months', months: 1 },
              ],
            },
            exclude: true,
          },
        ],
      },
    },
  },
  {
    name: 'the latest months of one hospital, counted among every hospital’s months',
    spec: {
      where: {
        and: [
          { op: 'last_months', months: 2 },
          { column: 'hospital', op: 'eq', value: 'north' },
          { column: 'code', op: 'in', values: ['8480-6', '1-8'] },
        ],
      },
    },
  },
  {
    name: 'the replaced release, named, for the code only it holds',
    spec: {
      where: { op: 'code', codes: [replacedOnlyCode] },
      // Filled in below: the first release of south's March.
      releases: ['replaced'],
    },
  },
  {
    name: 'the current releases, for the code only the replaced one holds',
    spec: { where: { op: 'code', codes: [replacedOnlyCode] } },
    empty: true,
  },
  {
    name: 'a file with its codes unlisted and a release without statistics',
    spec: {
      where: {
        and: [
          { column: 'hospital', op: 'in', values: ['north', 'south'] },
          { column: 'month', op: 'lte', value: '2024-02' },
          { column: 'code', op: 'eq', value: '1-8' },
        ],
      },
    },
  },
  {
    name: 'the main query’s codes and a cohort criterion’s, each on its own files',
    spec: {
      where: { column: 'code', op: 'eq', value: '8302-2' },
      cohort: {
        match: 'any',
        criteria: [
          { where: { op: 'code', codes: ['8462-4'] }, minRows: 2 },
          { where: { column: 'code', op: 'starts_with', value: '257' } },
        ],
      },
    },
  },
  {
    name: 'a grant of one hospital and a filter on another',
    spec: { where: { column: 'hospital', op: 'ne', value: 'south' } },
    access: { level: 'aggregate', hospitals: ['south'], holder: 'user:oracle' },
    empty: true,
  },
];

function handPickedSpec(
  spec: (typeof handPicked)[number]['spec'],
  from: Lake = lake,
): QuerySpecInput {
  const replaced = from.published.find((r) => r.hospital === 'south' && r.month === '2024-03')!;
  return {
    dataset,
    ...spec,
    ...(spec.releases ? { releases: [replaced.id] } : {}),
    groupBy: [{ column: 'hospital' }, { column: 'month' }, { column: 'code' }],
    measures: [{ fn: 'count' }, { fn: 'patients' }],
  };
}

describe('pruning never drops a matching row, in cases chosen by hand', () => {
  it.each(handPicked)('$name', async ({ spec, access, empty }) => {
    const { pruned, oracle } = await compare(handPickedSpec(spec), access ?? everyone);
    expect(pruned).toEqual(oracle);
    expect(oracle.length > 1).toBe(!empty);
  });

  it('leaves files out in these cases, so that they test something', async () => {
    let pruning = 0;
    for (const { spec, access } of handPicked) {
      const { filesRead, filesAll } = await compare(handPickedSpec(spec), access ?? everyone);
      if (filesRead < filesAll) pruning += 1;
    }
    expect(pruning).toBeGreaterThan(handPicked.length / 2);
  });
});

/**
 * The same plans on Spark: the files the planner keeps are read by Spark's own scan (the
 * partition columns taken from each file's path), over the lake DuckDB's ingest wrote.
 */
describe('pruning never drops a matching row on Spark', () => {
  let spark: QueryEngine;

  beforeAll(async () => {
    spark = await createSparkEngine({ url: testSparkUrl(), store: lake.platform.store });
  }, 120_000);

  afterAll(async () => {
    await spark?.close();
  });

  // One case (Spark takes seconds a query on a loaded machine): files left out of releases
  // for the main query and for each cohort criterion, grouped by the partition columns.
  const onSpark = handPicked.filter(({ name }) => name.startsWith('the main query’s codes'));

  it('answers a case chosen by hand as the oracle does', async () => {
    expect(onSpark).toHaveLength(1);
    for (const { name, spec, access, empty } of onSpark) {
      const compared = await compare(handPickedSpec(spec), access ?? everyone, spark);
      expect(compared.pruned, name).toEqual(compared.oracle);
      expect(compared.oracle.length > 1, name).toBe(!empty);
      expect(compared.filesRead).toBeLessThan(compared.filesAll);
    }
  }, 180_000);
});

/**
 * The catalog's part of pruning (the releases within the filters' hospitals and months, the
 * files listing the codes) on PostgreSQL as well: the cases chosen by hand over the same lake.
 */
describe('pruning never drops a matching row, with the catalog on PostgreSQL', () => {
  let postgres: Lake;

  beforeAll(async () => {
    postgres = await buildLake('postgres');
  }, 240_000);

  afterAll(async () => {
    await postgres?.platform.dispose();
  });

  it('answers the cases chosen by hand as the oracle does', async () => {
    for (const { name, spec, access, empty } of handPicked) {
      const compared = await compare(
        handPickedSpec(spec, postgres),
        access ?? everyone,
        undefined,
        postgres,
      );
      expect(compared.pruned, name).toEqual(compared.oracle);
      expect(compared.oracle.length > 1, name).toBe(!empty);
    }
  }, 120_000);
});
