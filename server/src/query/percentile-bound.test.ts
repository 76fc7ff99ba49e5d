import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestPlatform, type TestPlatform } from '../../test/helper.ts';
import { ingest, prepareDataset, synthea } from '../../test/ingest-helpers.ts';
import {
  createSyntheticLabPlatform,
  researcherWithAccess,
  runQuery,
} from '../../test/query-helpers.ts';
import { releasesRepository } from '../catalog/releases-repository.ts';
import type { QueryEngine } from '../engines/types.ts';
import { releaseFilesGlob, releaseFolder } from '../ingest/lake-keys.ts';
import type { Platform } from '../platform.ts';

/**
 * Aggregate percentiles are judged with the most rows one patient has in each release, kept in
 * the catalog at ingest, instead of counting it per query in two window passes (issue 19's
 * cost). The bound must be the truth of the lake, the answer must be the one counting gives,
 * and counting must happen only where the bound cannot show a percentile safe.
 */

/** The platform with every SQL statement its engine runs recorded in `statements`. */
function recording(platform: Platform): { platform: Platform; statements: string[] } {
  const statements: string[] = [];
  const engine = new Proxy(platform.engine, {
    get(target, property) {
      const value = Reflect.get(target, property) as unknown;
      if (property === 'rows') {
        return (...args: Parameters<QueryEngine['rows']>) => {
          statements.push(args[0].sql);
          return target.rows(...args);
        };
      }
      return typeof value === 'function' ? value.bind(target) : value;
    },
  });
  return { platform: { ...platform, engine }, statements };
}

/** A window over the patient column: what counting per patient costs. */
const countsPerPatient = (statement: string) =>
  /OVER \(PARTITION BY [^)]*"patient"\)/.test(statement);

/** The true most rows of one patient in each current release, read from its Parquet files. */
async function trueMostRows(platform: Platform, datasetId: string): Promise<Map<string, number>> {
  const releases = await releasesRepository(platform.catalog.db).locations(datasetId);
  const most = new Map<string, number>();
  for (const release of releases) {
    const files = releaseFilesGlob(
      platform.store.locate(releaseFolder({ ...release, releaseId: release.id })),
    );
    const [row] = await platform.engine.rows({
      sql: `SELECT max(n) AS most FROM (SELECT count(*) AS n FROM ${platform.engine.dialect.scanParquet([files])} AS t GROUP BY patient) AS p`,
      params: [],
    });
    most.set(release.id, Number(row?.most));
  }
  return most;
}

async function keptMostRows(platform: Platform, datasetId: string) {
  const releases = await releasesRepository(platform.catalog.db).locations(datasetId);
  return new Map(releases.map((release) => [release.id, release.maxRowsPerPatient]));
}

/** Forgets the bound, as for releases published before it was kept. */
async function forgetBounds(platform: Platform): Promise<void> {
  await sql`update releases set max_rows_per_patient = null`.execute(platform.catalog.db);
}

/** Result rows in one order, to compare answers whose groups come unsorted. */
const sorted = (rows: ReadonlyArray<Record<string, unknown>>) =>
  [...rows].sort((a, b) => JSON.stringify(a).localeCompare(JSON.stringify(b)));

describe('percentiles judged with the catalog bound on rows per patient', () => {
  it('the bound is the truth of the lake after a real ingest (Synthea, two months)', async () => {
    const platform = await createTestPlatform();
    try {
      await prepareDataset(platform, 'synthea-observations');
      for (const month of ['2020-12', '2021-04'] as const)
        await ingest(platform, { file: synthea(month), month });
      const kept = await keptMostRows(platform, 'synthea-observations');
      expect(kept.size).toBe(2);
      expect(kept).toEqual(await trueMostRows(platform, 'synthea-observations'));
    } finally {
      await platform.dispose();
    }
  }, 120_000);

  describe('on a generated lake', () => {
    let platform: TestPlatform;
    const measures = [
      { fn: 'percentile', column: 'value', p: 0.5 },
      { fn: 'percentile', column: 'value', p: 0.9 },
      { fn: 'count' },
    ];
    /** Coarse groups, where the bound shows every percentile safe. */
    const coarse = {
      dataset: 'lab-results',
      groupBy: [{ column: 'code' }, { column: 'sex' }],
      measures,
    };
    /** Groups by code and exact age: too few values each for the bound, enough for counting. */
    const fine = {
      dataset: 'lab-results',
      groupBy: [{ column: 'code' }, { column: 'age' }],
      measures,
    };

    beforeAll(async () => {
      platform = await createSyntheticLabPlatform({
        hospitals: 2,
        months: 2,
        rowsPerRelease: 60_000,
      });
    }, 120_000);

    afterAll(() => platform.dispose());

    it('keeps the true most rows of one patient of every release', async () => {
      const kept = await keptMostRows(platform, 'lab-results');
      expect(kept.size).toBe(4);
      expect(kept).toEqual(await trueMostRows(platform, 'lab-results'));
    });

    it('lets the release ledger judge large regions by their rows, without asking the engine', async () => {
      // The total, then the same rows by code: the total less two codes is a region the ledger
      // must judge; its rows over the bound show it holds enough patients.
      const total = { dataset: 'lab-results', measures: [{ fn: 'patients' }, { fn: 'count' }] };
      const byCode = { ...total, groupBy: [{ column: 'code' }] };
      const asksTheLedgerEngine = (statement: string) => statement.includes('AS r0');
      const ledgerStatements = async (email: string) => {
        const holder = await researcherWithAccess(platform, email, 'lab-results', 'aggregate');
        await runQuery(platform, holder, total);
        const recorded = recording(platform);
        const { job, rows } = await runQuery(recorded.platform, holder, byCode);
        expect(job.status).toBe('succeeded');
        expect(rows.every((row) => !row.suppressed)).toBe(true);
        return recorded.statements.filter(asksTheLedgerEngine);
      };
      expect(await ledgerStatements('bounded@example.org')).toEqual([]);
      // Without the bound the same check asks the engine.
      const kept = await trueMostRows(platform, 'lab-results');
      await forgetBounds(platform);
      try {
        expect((await ledgerStatements('unbounded@example.org')).length).toBeGreaterThan(0);
      } finally {
        for (const [id, value] of kept) {
          await sql`update releases set max_rows_per_patient = ${value} where id = ${id}`.execute(
            platform.catalog.db,
          );
        }
      }
    });

    it('asks nothing of the ledger for a question asked before', async () => {
      const holder = await researcherWithAccess(
        platform,
        'repeat@example.org',
        'lab-results',
        'aggregate',
      );
      const byAge = {
        dataset: 'lab-results',
        groupBy: [{ column: 'age', bands: [18, 40, 65] }],
        measures: [{ fn: 'patients' }],
      };
      const first = await runQuery(platform, holder, byAge);
      const again = await runQuery(platform, holder, byAge);
      expect(again.rows).toEqual(first.rows);
      const cells = await sql<{ n: string }>`select count(*) as n from released_cells`.execute(
        platform.catalog.db,
      );
      const before = Number(cells.rows[0]?.n);
      await runQuery(platform, holder, byAge);
      const after = await sql<{ n: string }>`select count(*) as n from released_cells`.execute(
        platform.catalog.db,
      );
      // Nothing is added: its cells were released before, and its result's record is the one
      // the holder was given word for word (release-ledger.ts records no copy of it).
      expect(Number(after.rows[0]?.n) - before).toBe(0);
    });

    /**
     * Runs a spec for a holder of its own, so that the release ledger compares nothing, and
     * records the engine's statements.
     */
    let holders = 0;
    const runAsNewHolder = async (spec: object) => {
      holders += 1;
      const user = await researcherWithAccess(
        platform,
        `holder${holders}@example.org`,
        'lab-results',
        'aggregate',
      );
      const recorded = recording(platform);
      const { job, rows } = await runQuery(recorded.platform, user, spec);
      expect(job.status).toBe('succeeded');
      return { rows: sorted(rows), total: job.summary?.total, statements: recorded.statements };
    };

    it('computes the total of a grouped query apart: all its rows and patients, no percentile', async () => {
      const releases = await releasesRepository(platform.catalog.db).locations('lab-results');
      const files = releases.map((release) =>
        releaseFilesGlob(
          platform.store.locate(releaseFolder({ ...release, releaseId: release.id })),
        ),
      );
      const [truth] = await platform.engine.rows({
        sql: `SELECT count(*) AS n, count(DISTINCT patient) AS p FROM ${platform.engine.dialect.scanParquet(files)} AS t`,
        params: [],
      });
      const user = await researcherWithAccess(platform, 'totals@example.org', 'lab-results', 'row');
      const answer = async (spec: object) => {
        const recorded = recording(platform);
        const { job } = await runQuery(recorded.platform, user, spec);
        expect(job.status).toBe('succeeded');
        return { summary: job.summary!, statement: recorded.statements[0]! };
      };
      const withPercentiles = await answer(coarse);
      expect(withPercentiles.statement).toContain('UNION ALL');
      expect(withPercentiles.statement).not.toContain('GROUPING SETS');
      expect(withPercentiles.summary.matching).toEqual({
        rows: Number(truth?.n),
        patients: Number(truth?.p),
      });
      expect(withPercentiles.summary.total).toMatchObject({
        rows: Number(truth?.n),
        value_p50: null,
        value_p90: null,
      });
      // Without percentiles the total counts the same.
      const counts = await answer({ ...coarse, measures: [{ fn: 'count' }, { fn: 'patients' }] });
      expect(counts.summary.matching).toEqual(withPercentiles.summary.matching);
    });

    it('counts per patient only where the bound falls short, and answers as counting does', async () => {
      const coarseWithBound = await runAsNewHolder(coarse);
      expect(coarseWithBound.statements.filter(countsPerPatient)).toEqual([]);
      expect(coarseWithBound.rows.every((row) => typeof row.value_p90 === 'number')).toBe(true);
      const fineWithBound = await runAsNewHolder(fine);
      expect(countsPerPatient(fineWithBound.statements[0]!)).toBe(false);
      expect(fineWithBound.statements.some(countsPerPatient)).toBe(true);
      // Counting showed medians safe that the bound could not.
      expect(fineWithBound.rows.some((row) => typeof row.value_p50 === 'number')).toBe(true);

      await forgetBounds(platform);
      for (const [spec, withBound] of [
        [coarse, coarseWithBound],
        [fine, fineWithBound],
      ] as const) {
        const counted = await runAsNewHolder(spec);
        expect(countsPerPatient(counted.statements[0]!)).toBe(true);
        expect(withBound.rows).toEqual(counted.rows);
        expect(withBound.total).toEqual(counted.total);
      }
    });

    it('counts the most rows of one patient in the files read where the catalog bound is loose, not per group', async () => {
      // A loose bound, as where the patient with the most rows differs from release to
      // release: ten times the truth, still an upper bound.
      const truth = await trueMostRows(platform, 'lab-results');
      for (const [id, value] of truth) {
        await sql`update releases set max_rows_per_patient = ${value * 10} where id = ${id}`.execute(
          platform.catalog.db,
        );
      }
      // One hospital's files: a set no other test of this file reads, so none counted it yet.
      const byCode = {
        dataset: 'lab-results',
        where: { column: 'hospital', op: 'eq', value: 'h01' },
        groupBy: [{ column: 'code' }],
        measures,
      };
      try {
        const loose = await runAsNewHolder(byCode);
        const mostRows = loose.statements.filter((statement) => statement.includes('AS most'));
        expect(mostRows).toHaveLength(1);
        expect(loose.statements.filter(countsPerPatient)).toEqual([]);
        expect(loose.rows.every((row) => typeof row.value_p90 === 'number')).toBe(true);
        // The figure is kept for these files: a second question over them counts nothing.
        const again = await runAsNewHolder(byCode);
        expect(again.statements.filter((statement) => statement.includes('AS most'))).toEqual([]);
        expect(again.rows).toEqual(loose.rows);
        // The same answer as counting per patient in each group gives.
        await forgetBounds(platform);
        const counted = await runAsNewHolder(byCode);
        expect(countsPerPatient(counted.statements[0]!)).toBe(true);
        expect(loose.rows).toEqual(counted.rows);
        expect(loose.total).toEqual(counted.total);
      } finally {
        for (const [id, value] of truth) {
          await sql`update releases set max_rows_per_patient = ${value} where id = ${id}`.execute(
            platform.catalog.db,
          );
        }
      }
    });
  });
});
