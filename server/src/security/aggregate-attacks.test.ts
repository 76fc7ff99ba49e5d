import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { parse } from 'csv-parse/sync';
import {
  groupOutputName,
  measureOutputName,
  type Group as SpecGroup,
  type Measure as SpecMeasure,
} from '@medlake/shared';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { attemptTally } from '../../test/attempts.ts';
import { createTestPlatform, type TestPlatform } from '../../test/helper.ts';
import { ingest, prepareDataset, synthea } from '../../test/ingest-helpers.ts';
import { lakeRowFiles, readParquetObjects } from '../../test/parquet.ts';
import { researcherWithAccess, runQuery } from '../../test/query-helpers.ts';
import { testSparkUrl } from '../../test/spark.ts';
import type { User } from '../catalog/users-repository.ts';
import { createSparkEngine } from '../engines/spark/spark-engine.ts';
import type { QueryEngine } from '../engines/types.ts';
import type { Platform } from '../platform.ts';
import { generateExports } from '../demo/generate-exports.ts';
import { exportQueryResult } from '../use-cases/queries/export-query.ts';

/**
 * Issue 19: an aggregate user who knows the schema and writes any spec, against the Synthea
 * fixture, with a row-level account as the oracle of the truth. Every attempt is counted and
 * checked to fail; the tally per class is printed for docs/privacy.md. An attempt succeeds
 * when something published (a group's label or figure, the total minus the groups shown, a
 * histogram bin, a percentile, a cohort's size) describes 1 to k−1 patients. The checks run in
 * each engine's SQL, so the suite runs on DuckDB and on Spark (fewer random specs there), and
 * the random specs run on generated data as well.
 */

// Each test asks many queries, each checked by the release ledger; on Spark, on a loaded
// machine, some take close to a minute.
vi.setConfig({ testTimeout: 240_000 });

const k = 11;
const small = (patients: number) => patients > 0 && patients < k;

/** One matching row, as the oracle reads it from the lake (the event date under its own name). */
type LakeRow = Record<string, unknown> & {
  patient: string;
  hospital: string;
  month: string;
  sex: string | null;
  race: string | null;
  ethnicity: string | null;
  birth_year: number | null;
  age: number | null;
  zip: string | null;
  code: string;
  value: number | null;
};

type Condition =
  | { column: string; op: 'eq'; value: string | number }
  | { column: string; op: 'between'; min: number; max: number }
  | { op: 'code'; codes: string[] };
type Group =
  | { column: string }
  | { column: string; binWidth: number }
  | { column: string; bucket: 'month' | 'year' }
  | { column: 'age'; bands: number[] };
type Measure =
  | { fn: 'count' | 'patients' }
  | { fn: 'sum' | 'mean'; column: 'value' }
  | { fn: 'percentile'; column: 'value'; p: number }
  | { fn: 'histogram'; column: 'value'; binWidth: number };
type Spec = {
  where?: { and: Condition[] };
  cohort?: { criteria: Array<{ where: Condition; minRows: number }> };
  groupBy: Group[];
  measures: Measure[];
  orderBy?: Array<{ by: string; direction: 'asc' | 'desc' }>;
  limit?: number;
};

type Cell = Record<string, unknown> & { suppressed?: boolean };

/** The oracle: the spec's semantics over the lake's rows, for the grammar above. */
function matches(row: LakeRow, condition: Condition): boolean {
  if (condition.op === 'code') return condition.codes.includes(row.code);
  const value = row[condition.column];
  if (value === null) return false;
  if (condition.op === 'eq') return value === condition.value;
  return (value as number) >= condition.min && (value as number) <= condition.max;
}

function labelOf(row: LakeRow, group: Group): unknown {
  const value = row[group.column];
  if (value === null) return null;
  if ('binWidth' in group) return Math.floor((value as number) / group.binWidth) * group.binWidth;
  if ('bucket' in group) {
    const date = String(value).slice(0, 10);
    return group.bucket === 'year' ? `${date.slice(0, 4)}-01-01` : `${date.slice(0, 7)}-01`;
  }
  if ('bands' in group) {
    const bound = group.bands.findIndex((band) => (value as number) < band);
    if (bound === -1) return `${group.bands.at(-1)}+`;
    return `${bound === 0 ? 0 : group.bands[bound - 1]}-${group.bands[bound]! - 1}`;
  }
  return value;
}

/** A group's result column, as the service names it. */
function outputName(group: Group): string {
  return groupOutputName(group as SpecGroup);
}

/** A label as the result shows it and as the oracle computes it, made comparable. */
function normal(value: unknown): unknown {
  if (typeof value === 'string' && /^\d{4}-\d{2}-\d{2}/.test(value)) return value.slice(0, 10);
  if (typeof value === 'number') return Number(value.toPrecision(12));
  return value ?? null;
}

type TruthGroup = { rows: LakeRow[]; patients: Set<string> };

function truth(rows: readonly LakeRow[], spec: Spec): Map<string, TruthGroup> {
  const cohort = spec.cohort?.criteria.map((criterion) => {
    const counts = new Map<string, number>();
    for (const row of rows) {
      if (matches(row, criterion.where))
        counts.set(row.patient, (counts.get(row.patient) ?? 0) + 1);
    }
    return new Set(
      [...counts].filter(([, count]) => count >= criterion.minRows).map(([patient]) => patient),
    );
  });
  const groups = new Map<string, TruthGroup>();
  for (const row of rows) {
    if (spec.where && !spec.where.and.every((condition) => matches(row, condition))) continue;
    if (cohort && !cohort.every((patients) => patients.has(row.patient))) continue;
    const key = keyOf(spec.groupBy.map((group) => labelOf(row, group)));
    const entry = groups.get(key) ?? { rows: [], patients: new Set() };
    entry.rows.push(row);
    entry.patients.add(row.patient);
    groups.set(key, entry);
  }
  return groups;
}

const keyOf = (labels: unknown[]) => JSON.stringify(labels.map(normal));

/** A row's labels under a grouping, by the grouping's result column names. */
function labelsOf(row: LakeRow, groupBy: readonly Group[], names: readonly string[]): Cell {
  return Object.fromEntries(groupBy.map((group, index) => [names[index], labelOf(row, group)]));
}

function patientsOf(rows: readonly LakeRow[]): number {
  return new Set(rows.map((row) => row.patient)).size;
}

describe.each([
  { engine: 'DuckDB', data: 'Synthea', randomSpecs: 60 },
  { engine: 'Spark', data: 'Synthea', randomSpecs: 15 },
  { engine: 'DuckDB', data: 'generated', randomSpecs: 30 },
])(
  'attacks on aggregate access on $engine and $data data, against a row-level oracle',
  ({ engine, data, randomSpecs }) => {
    const synthetic = data === 'generated';
    const dataset = synthetic ? 'lab-results' : 'synthea-observations';
    /** The event date, which the time buckets group. */
    const date = synthetic ? 'collected_at' : 'observed_at';
    let scratch: string | undefined;
    let testPlatform: TestPlatform;
    /** The platform the attacker's queries run on: the test platform, or it with Spark. */
    let platform: Platform;
    let spark: QueryEngine | undefined;
    let attacker: User;
    let oracle: User;
    let lake: LakeRow[] = [];
    const { tally, attempt } = attemptTally();

    const ask = async (spec: Spec, as: User = attacker) => {
      const { job, rows } = await runQuery(platform, as, { dataset, ...spec });
      return { job, rows: rows as Cell[] };
    };

    /**
     * Every check the promise implies, on one result: each group shown, the total against the
     * groups shown, each histogram bin and percentile, the headline counts. Counts attempts of
     * `kind` (one per published figure it could have broken).
     */
    const checkResult = async (kind: string, spec: Spec) => {
      const { job, rows } = await ask(spec);
      expect(job.status, JSON.stringify(job.error)).toBe('succeeded');
      const summary = job.summary!;
      const truths = truth(lake, spec);
      const names = spec.groupBy.map(outputName);
      const what = JSON.stringify(spec);
      const shown: TruthGroup[] = [];
      for (const row of spec.groupBy.length > 0 ? rows : []) {
        const found = truths.get(keyOf(names.map((name) => row[name])));
        expect(found, `the oracle knows the group ${JSON.stringify(row)} of ${what}`).toBeDefined();
        attempt(kind, small(found!.patients.size), `group ${JSON.stringify(row)} of ${what}`);
        if (!row.suppressed) shown.push(found!);
        checkFigures(kind, row, found!.rows, spec, what);
      }
      const everything = [...truths.values()].flatMap((group) => group.rows);
      if (spec.groupBy.length === 0) {
        attempt(kind, !rows[0]?.suppressed && small(patientsOf(everything)), `total of ${what}`);
        if (rows[0]) checkFigures(kind, rows[0], everything, spec, what);
      } else if (summary.total && !summary.total.suppressed && spec.limit === undefined) {
        // What the total minus the groups shown leaves: a figure about the groups not shown.
        const total = summary.total as Cell;
        const rest = [...truths.values()].filter((group) => !shown.includes(group));
        const restRows = rest.flatMap((group) => group.rows);
        const restPatients = patientsOf(restRows);
        for (const measure of spec.measures) {
          const name = measureName(measure);
          if (measure.fn !== 'count' && measure.fn !== 'sum') continue;
          const published = rows
            .filter((row) => !row.suppressed)
            .reduce((sum, row) => sum + Number(row[name] ?? 0), 0);
          const remainder = Number(total[name] ?? 0) - published;
          const contributors = patientsOf(
            measure.fn === 'sum' ? restRows.filter((row) => row.value !== null) : restRows,
          );
          attempt(
            kind,
            Math.abs(remainder) > 1e-6 && small(contributors),
            `total minus the groups shown, ${name} ${remainder} of ${restPatients} patients, in ${what}`,
          );
        }
      }
      const matching = summary.matching?.patients;
      attempt(
        kind,
        typeof matching === 'number' && small(matching),
        `the headline count ${matching} of ${what}`,
      );
      return { job, rows };
    };

    /** A shown group's histogram bins and percentiles against the rows behind them. */
    const checkFigures = (
      kind: string,
      row: Cell,
      rows: readonly LakeRow[],
      spec: Spec,
      what: string,
    ) => {
      if (row.suppressed) return;
      const valued = rows.filter((entry) => entry.value !== null);
      for (const measure of spec.measures) {
        const name = measureName(measure);
        if (measure.fn === 'histogram') {
          const bins = (row[name] ?? []) as Array<{ bin: number; count: number | string }>;
          const binOf = (entry: LakeRow) =>
            normal(Math.floor(entry.value! / measure.binWidth) * measure.binWidth);
          const hidden = new Set(bins.filter((bin) => typeof bin.count !== 'number'));
          for (const bin of bins) {
            const inBin = valued.filter((entry) => binOf(entry) === normal(bin.bin));
            if (typeof bin.count === 'number') {
              attempt(kind, small(patientsOf(inBin)), `bin ${bin.bin} of ${what}`);
            }
          }
          if (hidden.size > 0 && hidden.size < bins.length) {
            const hiddenBins = new Set([...hidden].map((bin) => normal(bin.bin)));
            const behind = valued.filter((entry) => hiddenBins.has(binOf(entry)));
            attempt(
              kind,
              small(patientsOf(behind)),
              `the rows minus the bins shown, ${[...hiddenBins].join(' ')}, of ${what}`,
            );
          }
        }
        if (measure.fn === 'percentile' && typeof row[name] === 'number') {
          const value = row[name];
          const below = patientsOf(valued.filter((entry) => entry.value! <= value));
          const above = patientsOf(valued.filter((entry) => entry.value! >= value));
          attempt(
            kind,
            small(below) || small(above),
            `percentile ${measure.p} = ${value} with ${below} patients at or below and ${above} at or above, in ${what}`,
          );
        }
      }
    };

    beforeAll(async () => {
      testPlatform = await createTestPlatform();
      platform = testPlatform;
      await prepareDataset(platform, dataset, ['synthea', 'north']);
      const uploads: Array<{ file: string; hospital: string; month: string }> = [];
      if (synthetic) {
        // Two hospitals' months of `medlake demo generate`: fake people, real shapes.
        scratch = await mkdtemp(path.join(tmpdir(), 'medlake-attacks-'));
        const generated = await generateExports({
          hospitals: 2,
          months: 2,
          rows: 6000,
          outDir: scratch,
        });
        for (const [index, file] of generated.entries()) {
          uploads.push({
            file: file.file,
            hospital: index < 2 ? 'synthea' : 'north',
            month: file.month,
          });
        }
      } else {
        uploads.push(
          { file: synthea('all'), hospital: 'synthea', month: '2021-01' },
          { file: synthea('2020-12'), hospital: 'north', month: '2020-12' },
          { file: synthea('2021-04'), hospital: 'north', month: '2021-04' },
        );
      }
      for (const upload of uploads) {
        const result = await ingest(platform, { ...upload, dataset });
        expect(result.status).toBe('published');
      }
      attacker = await researcherWithAccess(platform, 'mallory@example.org', dataset, 'aggregate');
      oracle = await researcherWithAccess(platform, 'oracle@example.org', dataset, 'row');
      const { job, rows } = await runQuery(platform, oracle, {
        dataset,
        select: [
          'patient',
          'hospital',
          'month',
          'sex',
          'race',
          'ethnicity',
          'birth_year',
          'age',
          'zip',
          date,
          'code',
          'value',
        ],
      });
      expect(job.status).toBe('succeeded');
      lake = rows as unknown as LakeRow[];
      if (synthetic) {
        // A row-level user sees the lake's shifted dates moved again by a shift of their own
        // per patient (privacy-secrets.ts); the aggregate attacker sees the lake's. Take the
        // oracle's own shift back out.
        const holder = `user:${oracle.id}`;
        const platformOf = new Map<string, string>();
        const stored = await readParquetObjects(platform.store, await lakeRowFiles(platform.store));
        for (const patient of new Set(stored.map((row) => String(row.patient)))) {
          platformOf.set(platform.privacy.pseudonymFor(holder, patient), patient);
        }
        for (const row of lake) {
          const shift = platform.privacy.dateShiftFor(holder, platformOf.get(row.patient)!);
          const text = String(row[date]);
          const moved = new Date(Date.parse(`${text.replace(' ', 'T')}Z`) - shift * 86_400_000);
          row[date] = `${moved.toISOString().slice(0, 10)}${text.slice(10)}`;
        }
      }
      expect(lake.length).toBeGreaterThan(20_000);
      if (engine === 'Spark') {
        spark = await createSparkEngine({ url: testSparkUrl(), store: testPlatform.store });
        platform = { ...testPlatform, engine: spark };
      }
    }, 180_000);

    afterAll(async () => {
      console.log(
        `aggregate attacks on ${engine}, ${data} data (class: tried, succeeded):\n` +
          [...tally]
            .map(([kind, { tried, succeeded }]) => `  ${kind}: ${tried}, ${succeeded}`)
            .join('\n'),
      );
      await spark?.close();
      await testPlatform?.dispose();
      if (scratch) await rm(scratch, { recursive: true, force: true });
    });

    it('group labels as data: groupings fine enough that each group is one record', async () => {
      const fine: Group[][] = [
        [
          { column: date },
          { column: 'zip' },
          { column: 'birth_year' },
          { column: 'sex' },
          { column: 'code' },
          { column: 'value', binWidth: 0.001 },
        ],
        [{ column: 'code' }, { column: 'value', binWidth: 0.001 }],
        [{ column: 'zip' }],
        [{ column: 'birth_year' }, { column: 'sex' }, { column: 'race' }, { column: 'ethnicity' }],
        [{ column: date, bucket: 'month' }, { column: 'code' }],
      ];
      let withheld = 0;
      for (const groupBy of fine) {
        const { job } = await checkResult('group labels', {
          groupBy,
          measures: [{ fn: 'count' }, { fn: 'patients' }],
        });
        withheld += job.summary?.withheldGroups ?? 0;
      }
      // The groupings were fine enough to have small groups to leave out.
      expect(withheld).toBeGreaterThan(100);
    });

    it('the total minus the groups shown: rows, sums and means, with and without values', async () => {
      for (const spec of [
        {
          groupBy: [{ column: 'race' }],
          measures: [{ fn: 'count' }, { fn: 'sum', column: 'value' }],
        },
        {
          where: { and: [{ op: 'code', codes: ['8302-2', '72166-2'] }] },
          groupBy: [{ column: 'code' }, { column: 'ethnicity' }],
          measures: [
            { fn: 'count' },
            { fn: 'sum', column: 'value' },
            { fn: 'mean', column: 'value' },
          ],
        },
        // Text results have no value: the groups of them add nothing to a sum.
        {
          groupBy: [{ column: 'birth_year' }],
          measures: [{ fn: 'count' }, { fn: 'sum', column: 'value' }],
        },
      ] as Spec[]) {
        await checkResult('remainder from the total', spec);
      }
    });

    it('rows counted where patients should be: many rows of few patients', async () => {
      await checkResult('rows for patients', {
        where: { and: [{ column: 'birth_year', op: 'between', min: 1930, max: 1945 }] },
        groupBy: [{ column: 'code' }],
        measures: [{ fn: 'count' }],
      });
    });

    it('histogram bins of one patient, and the rows minus the bins shown', async () => {
      for (const binWidth of [0.1, 1, 5]) {
        await checkResult('histogram bins', {
          where: { and: [{ op: 'code', codes: ['29463-7'] }] },
          groupBy: [],
          measures: [{ fn: 'count' }, { fn: 'histogram', column: 'value', binWidth }],
        });
        await checkResult('histogram bins', {
          where: { and: [{ op: 'code', codes: ['8302-2', '29463-7'] }] },
          groupBy: [{ column: 'sex' }],
          measures: [{ fn: 'count' }, { fn: 'histogram', column: 'value', binWidth }],
        });
      }
    });

    it('minimum and maximum: one record’s value, refused', async () => {
      for (const column of ['value', date, 'code', 'zip']) {
        for (const fn of ['min', 'max']) {
          const submitted = await runQuery(platform, attacker, {
            dataset,
            groupBy: [{ column: 'sex' }],
            measures: [{ fn, column }],
          }).catch((error: Error) => error);
          attempt(
            'single-record measures',
            !(submitted instanceof Error),
            `${fn} of ${column} answered`,
          );
          expect(String(submitted)).toMatch(/one patient's value/);
        }
      }
    });

    it('extreme percentiles', async () => {
      for (const p of [0.01, 0.05, 0.5, 0.95, 0.99]) {
        await checkResult('extreme percentiles', {
          groupBy: [{ column: 'code' }],
          measures: [{ fn: 'patients' }, { fn: 'percentile', column: 'value', p }],
        });
      }
    });

    it('an alias named like the service’s own fields', async () => {
      for (const spec of [
        { groupBy: [{ column: 'zip', as: 'suppressed' }], measures: [{ fn: 'count' }] },
        { groupBy: [{ column: 'zip' }], measures: [{ fn: 'count', as: 'suppressed' }] },
      ]) {
        const outcome = await runQuery(platform, attacker, { dataset, ...spec }).catch(
          (error: Error) => error,
        );
        attempt('shadowed fields', !(outcome instanceof Error), JSON.stringify(spec));
        expect(String(outcome)).toContain('suppressed is a name the service keeps for itself');
      }
    });

    it('sorting and limiting to the extremes of a fine grouping', async () => {
      for (const direction of ['asc', 'desc'] as const) {
        await checkResult('sorted extremes', {
          where: { and: [{ op: 'code', codes: ['29463-7'] }] },
          groupBy: [{ column: 'value', binWidth: 0.1 }],
          measures: [{ fn: 'count' }],
          orderBy: [{ by: 'value_bin', direction }],
          limit: 1,
        });
      }
    });

    it('a cohort narrowed to a few patients, and a filter that singles one out', async () => {
      const someone = lake.find((row) => row.zip !== null && row.birth_year !== null)!;
      for (const spec of [
        {
          cohort: { criteria: [{ where: { op: 'code', codes: ['29463-7'] }, minRows: 40 }] },
          groupBy: [],
          measures: [{ fn: 'count' }, { fn: 'patients' }, { fn: 'mean', column: 'value' }],
        },
        {
          cohort: { criteria: [{ where: { op: 'code', codes: ['29463-7'] }, minRows: 40 }] },
          groupBy: [{ column: 'code' }],
          measures: [{ fn: 'patients' }, { fn: 'mean', column: 'value' }],
        },
        {
          where: {
            and: [
              { column: 'zip', op: 'eq', value: someone.zip! },
              { column: 'birth_year', op: 'eq', value: someone.birth_year! },
            ],
          },
          groupBy: [],
          measures: [{ fn: 'patients' }, { fn: 'sum', column: 'value' }],
        },
      ] as Spec[]) {
        await checkResult('small cohorts and filters', spec);
      }
    });

    it('two groupings of one filter: a margin less the finer groups shown inside it', async () => {
      // Each pair is asked coarse first and fine first; the ledger (on by default) must hold
      // back whichever would let the rows of the left-out finer groups be worked out.
      const pairs: Array<[Group[], Group[]]> = [
        [[{ column: 'sex' }], [{ column: 'sex' }, { column: 'race' }]],
        [[], [{ column: 'race' }, { column: 'ethnicity' }]],
        [[{ column: 'code' }], [{ column: 'code' }, { column: 'sex' }, { column: 'race' }]],
        [[{ column: 'hospital' }], [{ column: 'hospital' }, { column: 'birth_year' }]],
      ];
      let researchers = 0;
      for (const [coarse, fine] of pairs) {
        for (const order of ['coarse first', 'fine first']) {
          // A researcher of their own per attempt, whose ledger starts empty.
          researchers += 1;
          const who = await researcherWithAccess(
            testPlatform,
            `pairs${researchers}@example.org`,
            dataset,
            'aggregate',
          );
          const where: Spec['where'] = {
            and: [{ column: 'value', op: 'between', min: 0, max: 1000 }],
          };
          const specOf = (groupBy: Group[]): Spec => ({
            where,
            groupBy,
            measures: [{ fn: 'count' }, { fn: 'patients' }],
          });
          const first = await ask(specOf(order === 'coarse first' ? coarse : fine), who);
          const second = await ask(specOf(order === 'coarse first' ? fine : coarse), who);
          const [coarseResult, fineResult] =
            order === 'coarse first' ? [first, second] : [second, first];
          const coarseNames = coarse.map(outputName);
          const fineTruth = truth(lake, specOf(fine));
          const fineNames = fine.map(outputName);
          const coarseCells =
            coarse.length === 0
              ? [{ ...(coarseResult.rows[0] ?? {}), suppressed: coarseResult.rows[0]?.suppressed }]
              : coarseResult.rows;
          for (const cell of coarseCells) {
            if (cell.suppressed) continue;
            const inside = (row: Cell) =>
              coarseNames.every((name) => normal(row[name]) === normal(cell[name]));
            const shownInside = fineResult.rows.filter((row) => !row.suppressed && inside(row));
            const remainder =
              Number(cell.rows) - shownInside.reduce((sum, row) => sum + Number(row.rows), 0);
            const shownKeys = new Set(
              shownInside.map((row) => keyOf(fineNames.map((name) => row[name]))),
            );
            const left = [...fineTruth.entries()]
              .filter(
                ([key, group]) =>
                  !shownKeys.has(key) && inside(labelsOf(group.rows[0]!, fine, fineNames)),
              )
              .flatMap(([, group]) => group.rows);
            attempt(
              'two groupings of one filter',
              remainder > 0 && small(patientsOf(left)),
              `${JSON.stringify(cell)} less ${shownInside.length} finer groups (${order}) leaves ${remainder} rows of ${patientsOf(left)} patients`,
            );
          }
        }
      }
      expect(tally.get('two groupings of one filter')?.tried).toBeGreaterThan(0);
    });

    it('CSV exports of fine groupings', async () => {
      for (const groupBy of [
        [{ column: 'zip' }, { column: 'sex' }],
        [{ column: 'code' }, { column: 'value', binWidth: 0.01 }],
        [{ column: 'code' }, { column: 'sex' }],
        [{ column: 'race' }, { column: 'value', binWidth: 10 }],
      ] as Group[][]) {
        const spec: Spec = { groupBy, measures: [{ fn: 'count' }, { fn: 'patients' }] };
        const { job } = await ask(spec);
        const link = await exportQueryResult(
          platform,
          { user: attacker, source: 'test' },
          job.id,
          'csv',
        );
        expect(link.url).not.toBeNull();
        const text = await readFile(platform.store.locate(`results/${job.id}/export.csv`), 'utf8');
        const [header, ...lines] = parse(text) as string[][];
        const truths = truth(lake, spec);
        const names = groupBy.map(outputName);
        for (const line of lines) {
          const row = Object.fromEntries(header!.map((name, index) => [name, line[index]]));
          const labels = names.map((name, index) =>
            row[name] === '' ? null : 'binWidth' in groupBy[index]! ? Number(row[name]) : row[name],
          );
          const found = truths.get(keyOf(labels));
          expect(found, `the oracle knows ${JSON.stringify(row)}`).toBeDefined();
          attempt('CSV exports', small(found!.patients.size), `exported ${JSON.stringify(row)}`);
        }
      }
      expect(tally.get('CSV exports')?.tried).toBeGreaterThan(0);
    });

    it('property: no random spec publishes a figure about 1 to 10 patients', async () => {
      const codes = [...new Set(lake.map((row) => row.code))].slice(0, 30);
      const condition: fc.Arbitrary<Condition> = fc.oneof(
        fc.record({
          column: fc.constant('sex'),
          op: fc.constant('eq' as const),
          value: fc.constantFrom('F', 'M'),
        }),
        fc.record({
          column: fc.constant('race'),
          op: fc.constant('eq' as const),
          value: fc.constantFrom('white', 'black', 'asian', 'hispanic', 'native', 'other'),
        }),
        fc.record({
          op: fc.constant('code' as const),
          codes: fc.subarray(codes, { minLength: 1, maxLength: 5 }),
        }),
        fc
          .tuple(fc.integer({ min: 0, max: 300 }), fc.integer({ min: 1, max: 200 }))
          .map(([min, span]) => ({
            column: 'value',
            op: 'between' as const,
            min,
            max: min + span,
          })),
        fc
          .tuple(fc.integer({ min: 1920, max: 2015 }), fc.integer({ min: 0, max: 30 }))
          .map(([min, span]) => ({
            column: 'birth_year',
            op: 'between' as const,
            min,
            max: min + span,
          })),
        fc.record({
          column: fc.constant('hospital'),
          op: fc.constant('eq' as const),
          value: fc.constantFrom('synthea', 'north'),
        }),
      );
      const group: fc.Arbitrary<Group> = fc.oneof(
        fc.constantFrom<Group>(
          { column: 'sex' },
          { column: 'race' },
          { column: 'ethnicity' },
          { column: 'code' },
          { column: 'birth_year' },
          { column: 'zip' },
          { column: 'hospital' },
          { column: 'month' },
          { column: date, bucket: 'month' },
          { column: date, bucket: 'year' },
          { column: 'age', bands: [18, 45, 65] },
        ),
        fc.constantFrom(0.001, 0.1, 1, 10, 50).map((binWidth) => ({ column: 'value', binWidth })),
      );
      const measure: fc.Arbitrary<Measure> = fc.oneof(
        fc.constantFrom<Measure>({ fn: 'sum', column: 'value' }, { fn: 'mean', column: 'value' }),
        fc
          .constantFrom(0.05, 0.25, 0.5, 0.75, 0.95)
          .map((p) => ({ fn: 'percentile' as const, column: 'value' as const, p })),
        fc
          .constantFrom(1, 5, 20)
          .map((binWidth) => ({ fn: 'histogram' as const, column: 'value' as const, binWidth })),
      );
      const spec: fc.Arbitrary<Spec> = fc
        .record({
          where: fc.option(fc.array(condition, { minLength: 1, maxLength: 2 }), { nil: undefined }),
          cohort: fc.option(
            fc.record({ where: condition, minRows: fc.integer({ min: 1, max: 20 }) }),
            { nil: undefined },
          ),
          groupBy: fc.uniqueArray(group, { maxLength: 3, selector: (g) => outputName(g) }),
          extra: fc.option(measure, { nil: undefined }),
        })
        .map(({ where, cohort, groupBy, extra }) => ({
          ...(where ? { where: { and: where } } : {}),
          ...(cohort ? { cohort: { criteria: [cohort] } } : {}),
          groupBy,
          measures: [{ fn: 'count' }, { fn: 'patients' }, ...(extra ? [extra] : [])] as Measure[],
        }));
      await fc.assert(
        fc.asyncProperty(spec, async (random) => {
          await checkResult('random specs', random);
        }),
        { numRuns: randomSpecs, seed: 19 },
      );
    }, 600_000);
  },
);

function measureName(measure: Measure): string {
  return measureOutputName(measure as SpecMeasure);
}
