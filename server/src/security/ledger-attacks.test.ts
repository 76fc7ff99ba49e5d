import { readFile } from 'node:fs/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { attemptTally } from '../../test/attempts.ts';
import { catalogBackends } from '../../test/catalog-backends.ts';
import { createTestPlatform, testActor, type TestPlatform } from '../../test/helper.ts';
import { contractFile, ingest, synthea } from '../../test/ingest-helpers.ts';
import { researcherWithAccess, runQuery } from '../../test/query-helpers.ts';
import { testSparkUrl } from '../../test/spark.ts';
import { queryJobsRepository } from '../catalog/query-jobs-repository.ts';
import type { User } from '../catalog/users-repository.ts';
import { createSparkEngine } from '../engines/spark/spark-engine.ts';
import type { QueryEngine } from '../engines/types.ts';
import { createLogger } from '../logger.ts';
import type { Platform } from '../platform.ts';
import { openCatalog } from '../catalog/catalog.ts';
import { executeQueryJob } from '../use-cases/queries/query-worker.ts';
import { addHospital, saveDataset } from '../use-cases/manage-datasets.ts';
import { getQuery, readResultPage } from '../use-cases/queries/read-query.ts';
import { submitQuery } from '../use-cases/queries/submit-query.ts';

/**
 * Issue 27: the release ledger against combinations of results, attacked as the issue did,
 * with a row-level account as the oracle. Each attack is one attempt per published set of
 * figures it needs; it succeeds when every figure it needs was released and together they
 * describe 1 to k−1 patients by the oracle. The combinations are checked by the engine, so the
 * attacks run on DuckDB and on Spark; the race of two submissions runs on PGlite and, as two
 * servers, on PostgreSQL.
 */

const k = 11;
const small = (n: number) => n > 0 && n < k;

type LakeRow = {
  patient: string;
  hospital: string;
  zip: string | null;
  sex: string | null;
  code: string;
  value: number | null;
  observed_at: string;
};
type Row = Record<string, unknown> & { suppressed: boolean };

const patientsOf = (rows: readonly LakeRow[]) => new Set(rows.map((row) => row.patient)).size;

/** Two hospitals of the Synthea fixture's patients: the first 20 at h01, the rest at h02. */
async function prepare(platform: Platform, dataset: string): Promise<void> {
  for (const id of ['h01', 'h02']) {
    await addHospital(platform, testActor, { id, name: `Hospital ${id}` }).catch(() => undefined);
  }
  const contract = JSON.parse(await readFile(contractFile('synthea-observations'), 'utf8'));
  await saveDataset(platform, { ...contract, name: dataset, title: dataset });
  const [header = '', ...lines] = (await readFile(synthea('all'), 'utf8'))
    .split('\n')
    .filter((line) => line !== '');
  const ids = [...new Set(lines.map((line) => line.split(',')[0]!))];
  const of = (part: string[]) =>
    [header, ...lines.filter((line) => part.includes(line.split(',')[0]!))].join('\n');
  for (const [hospital, part] of [
    ['h01', ids.slice(0, 20)],
    ['h02', ids.slice(20)],
  ] as const) {
    const result = await ingest(platform, { text: of(part), hospital, month: '2021-01', dataset });
    expect(result.status).toBe('published');
  }
}

describe.each([{ engine: 'DuckDB' }, { engine: 'Spark' }])(
  'the release ledger against combinations, on $engine',
  ({ engine }) => {
    const dataset = 'guarded';
    let testPlatform: TestPlatform;
    let platform: Platform;
    let spark: QueryEngine | undefined;
    let lake: LakeRow[] = [];
    let attackers = 0;
    const { tally, attempt } = attemptTally();

    /** A fresh attacker: an empty ledger of their own. */
    const attacker = async () => {
      attackers += 1;
      return researcherWithAccess(platform, `m${attackers}@example.org`, dataset, 'aggregate');
    };
    const ask = async (user: User, spec: object) => {
      const { job, rows } = await runQuery(platform, user, { dataset, ...spec });
      expect(job.status, JSON.stringify(job.error)).toBe('succeeded');
      return { job, rows: rows as Row[] };
    };
    const shown = (row: Row | undefined, measure = 'patients') =>
      row && !row.suppressed && typeof row[measure] === 'number' ? Number(row[measure]) : undefined;

    /** ZIP areas of 1 to 10 patients, by the oracle. */
    const rareZips = () => {
      const byZip = new Map<string, LakeRow[]>();
      for (const row of lake) {
        if (row.zip === null) continue;
        byZip.set(row.zip, [...(byZip.get(row.zip) ?? []), row]);
      }
      return [...byZip]
        .filter(([, rows]) => small(patientsOf(rows)))
        .map(([zip]) => zip)
        .sort();
    };
    const outside = (zip: string) => lake.filter((row) => row.zip !== zip && row.zip !== null);

    beforeAll(async () => {
      testPlatform = await createTestPlatform();
      platform = testPlatform;
      await prepare(platform, dataset);
      const oracle = await researcherWithAccess(platform, 'oracle@example.org', dataset, 'row');
      const { rows } = await runQuery(platform, oracle, {
        dataset,
        select: ['patient', 'hospital', 'zip', 'sex', 'code', 'value', 'observed_at'],
      });
      lake = rows as unknown as LakeRow[];
      expect(lake.length).toBeGreaterThan(20_000);
      if (engine === 'Spark') {
        spark = await createSparkEngine({ url: testSparkUrl(), store: testPlatform.store });
        platform = { ...testPlatform, engine: spark };
      }
    }, 180_000);

    afterAll(async () => {
      console.log(
        `release ledger attacks on ${engine} (class: tried, succeeded):\n` +
          [...tally]
            .map(([kind, { tried, succeeded }]) => `  ${kind}: ${tried}, ${succeeded}`)
            .join('\n'),
      );
      await spark?.close();
      await testPlatform?.dispose();
    });

    it('three totals: at h01, at h02, everywhere but one ZIP area (each order)', async () => {
      const zips = rareZips().slice(0, engine === 'Spark' ? 2 : 4);
      expect(zips.length).toBeGreaterThan(0);
      const orders = [
        [0, 1, 2],
        [2, 0, 1],
        [0, 2, 1],
      ];
      for (const zip of zips) {
        // Everything but the ZIP area (and the rows without one: `ne` is false for them).
        const truth = patientsOf(lake) - patientsOf(outside(zip));
        expect(small(truth), `the ZIP area ${zip} and the rows without one`).toBe(true);
        for (const order of orders.slice(0, engine === 'Spark' ? 1 : 3)) {
          const mallory = await attacker();
          const specs = [
            { where: { column: 'hospital', op: 'eq', value: 'h01' } },
            { where: { column: 'hospital', op: 'eq', value: 'h02' } },
            { where: { column: 'zip', op: 'ne', value: zip } },
          ];
          const figures: Array<number | undefined> = [];
          for (const index of order) {
            const { rows } = await ask(mallory, {
              ...specs[index],
              measures: [{ fn: 'patients' }],
            });
            figures[index] = shown(rows[0]);
          }
          const [h01, h02, rest] = figures;
          const derived =
            h01 !== undefined && h02 !== undefined && rest !== undefined
              ? h01 + h02 - rest
              : undefined;
          attempt(
            'three totals',
            derived !== undefined && small(derived),
            `h01 ${h01} + h02 ${h02} − all but ${zip} ${rest} = ${derived}, order ${order.join('')}`,
          );
        }
      }
      // The same in one grouped query: by hospital, then the total without the ZIP area.
      const mallory = await attacker();
      const zip = zips[0]!;
      const byHospital = await ask(mallory, {
        groupBy: [{ column: 'hospital' }],
        measures: [{ fn: 'patients' }],
      });
      const rest = await ask(mallory, {
        where: { column: 'zip', op: 'ne', value: zip },
        measures: [{ fn: 'patients' }],
      });
      const parts = byHospital.rows.map((row) => shown(row));
      const all = parts.every((part) => part !== undefined)
        ? parts.reduce((sum, part) => sum! + part!, 0)
        : undefined;
      const derived =
        all !== undefined && shown(rest.rows[0]) !== undefined
          ? all - shown(rest.rows[0])!
          : undefined;
      attempt(
        'three totals',
        derived !== undefined && small(derived),
        `by hospital, then all but ${zip}: ${derived}`,
      );
    }, 600_000);

    it('a renamed group: by sex, then by sex as “sx” without one ZIP area', async () => {
      for (const zip of rareZips().slice(0, engine === 'Spark' ? 2 : 4)) {
        const mallory = await attacker();
        const bySex = await ask(mallory, {
          groupBy: [{ column: 'sex' }],
          measures: [{ fn: 'patients' }],
        });
        const renamed = await ask(mallory, {
          where: { column: 'zip', op: 'ne', value: zip },
          groupBy: [{ column: 'sex', as: 'sx' }],
          measures: [{ fn: 'patients' }],
        });
        for (const row of renamed.rows) {
          const before = shown(bySex.rows.find((item) => item.sex === row.sx));
          const after = shown(row);
          const truth =
            patientsOf(lake.filter((item) => item.sex === row.sx)) -
            patientsOf(outside(zip).filter((item) => item.sex === row.sx));
          const derived = before !== undefined && after !== undefined ? before - after : undefined;
          attempt(
            'a renamed group',
            derived !== undefined && small(derived) && small(truth),
            `sex ${String(row.sx)} ${before} − without ${zip} ${after} = ${derived} (truth ${truth})`,
          );
        }
      }
    }, 600_000);

    it('histogram bins: a code at every hospital, then at h02 (the bins of h01’s few patients)', async () => {
      const byCode = new Map<string, LakeRow[]>();
      for (const row of lake) {
        if (row.value !== null) byCode.set(row.code, [...(byCode.get(row.code) ?? []), row]);
      }
      const codes = [...byCode]
        .filter(([, rows]) => patientsOf(rows) >= 40)
        .slice(0, engine === 'Spark' ? 2 : 5);
      expect(codes.length).toBeGreaterThan(0);
      for (const [code, rows] of codes)
        for (const share of [2, 4, 8]) {
          const values = rows.map((row) => row.value!).sort((a, b) => a - b);
          // Bins a half, a quarter and an eighth of the middle half of the values wide.
          const spread =
            values[Math.floor(values.length * 0.75)]! - values[Math.floor(values.length * 0.25)]!;
          const binWidth = Number(Math.max(spread / share, 0.1).toPrecision(1));
          const binOf = (value: number) => Math.floor(value / binWidth) * binWidth;
          const mallory = await attacker();
          const measures = [{ fn: 'histogram', column: 'value', binWidth }];
          const everywhere = await ask(mallory, { where: { op: 'code', codes: [code] }, measures });
          const atH02 = await ask(mallory, {
            where: {
              and: [
                { op: 'code', codes: [code] },
                { column: 'hospital', op: 'eq', value: 'h02' },
              ],
            },
            measures,
          });
          type Bin = { bin: number; count: number | null; suppressed: boolean };
          const binsOf = (row: Row | undefined) =>
            row && !row.suppressed ? ((row.value_histogram ?? []) as Bin[]) : [];
          const later = new Map(binsOf(atH02.rows[0]).map((bin) => [bin.bin.toPrecision(12), bin]));
          for (const bin of binsOf(everywhere.rows[0])) {
            const other = later.get(bin.bin.toPrecision(12));
            const apart =
              typeof bin.count === 'number' && typeof other?.count === 'number'
                ? bin.count - other.count
                : 0;
            const behind = rows.filter(
              (row) =>
                row.hospital === 'h01' &&
                binOf(row.value!).toPrecision(12) === bin.bin.toPrecision(12),
            );
            attempt(
              'histogram bins',
              apart > 0 && small(patientsOf(behind)),
              `${code} bin ${bin.bin} (width ${binWidth}): ${apart} rows of ${patientsOf(behind)} patients at h01`,
            );
          }
        }
    }, 600_000);

    it('rows and sums: equal patient counts, one row less (one patient’s exact result)', async () => {
      // Codes whose highest value is one row's, of a patient with other rows of the code.
      const byCode = new Map<string, LakeRow[]>();
      for (const row of lake) {
        if (row.value !== null) byCode.set(row.code, [...(byCode.get(row.code) ?? []), row]);
      }
      const targets = [...byCode]
        .map(([code, rows]) => ({ code, rows: rows.toSorted((a, b) => a.value! - b.value!) }))
        .filter(({ rows }) => {
          const last = rows.at(-1)!;
          return (
            patientsOf(rows) >= k &&
            rows.at(-2)!.value! < last.value! &&
            rows.slice(0, -1).some((row) => row.patient === last.patient)
          );
        })
        .slice(0, engine === 'Spark' ? 3 : 8);
      expect(targets.length).toBeGreaterThan(0);
      for (const { code, rows } of targets) {
        const mallory = await attacker();
        const last = rows.at(-1)!;
        const measures = [{ fn: 'patients' }, { fn: 'count' }, { fn: 'sum', column: 'value' }];
        const all = await ask(mallory, { where: { op: 'code', codes: [code] }, measures });
        const fewer = await ask(mallory, {
          where: {
            and: [
              { op: 'code', codes: [code] },
              { column: 'value', op: 'lt', value: last.value },
            ],
          },
          measures,
        });
        const [a, b] = [all.rows[0], fewer.rows[0]];
        const released = (row: Row | undefined) =>
          shown(row, 'rows') !== undefined && shown(row, 'value_sum') !== undefined;
        const both = released(a) && released(b);
        const rowsApart = both ? shown(a, 'rows')! - shown(b, 'rows')! : 0;
        const sumApart = both ? shown(a, 'value_sum')! - shown(b, 'value_sum')! : 0;
        // By the oracle: the rows of the first not in the second, of one patient.
        const behind = rows.filter((row) => row.value! >= last.value!);
        expect(patientsOf(behind)).toBe(1);
        attempt(
          'rows and sums, patients equal',
          both && rowsApart > 0,
          `${code}: ${rowsApart} rows and ${sumApart} apart, one patient's value ${last.value}`,
        );
      }
    }, 600_000);
  },
);

describe.each(catalogBackends())('two submissions at the same moment, on %s', (kind) => {
  let first: TestPlatform;
  /** A second server on the same catalog (PostgreSQL); on PGlite, the same one. */
  let second: Platform;
  let lake: LakeRow[] = [];
  const { tally, attempt } = attemptTally();

  beforeAll(async () => {
    first = await createTestPlatform(kind);
    await prepare(first, 'guarded');
    // A second server's own connections to the catalog (and its own queue of checks). PGlite
    // has one process by design: there the two jobs share the server.
    second =
      kind === 'postgres'
        ? { ...first, catalog: await openCatalog({ databaseUrl: first.env.DATABASE_URL! }) }
        : first;
    const oracle = await researcherWithAccess(first, 'oracle@example.org', 'guarded', 'row');
    const { rows } = await runQuery(first, oracle, {
      dataset: 'guarded',
      select: ['patient', 'hospital', 'zip', 'sex', 'code', 'value', 'observed_at'],
    });
    lake = rows as unknown as LakeRow[];
  }, 180_000);

  afterAll(async () => {
    console.log(
      `release ledger race on ${kind} (class: tried, succeeded):\n` +
        [...tally]
          .map(([name, { tried, succeeded }]) => `  ${name}: ${tried}, ${succeeded}`)
          .join('\n'),
    );
    if (second !== first) await second?.catalog.close();
    await first?.dispose();
  });

  it('runs the two checks one after the other: the second is held back', async () => {
    const hospitalRows = lake.filter((row) => row.hospital === 'h01');
    const zips = [...new Set(hospitalRows.map((row) => row.zip).filter((zip) => zip !== null))]
      .filter((zip) => small(patientsOf(hospitalRows.filter((row) => row.zip === zip))))
      .slice(0, 4);
    expect(zips.length).toBeGreaterThan(0);
    let round = 0;
    for (const zip of zips) {
      round += 1;
      const mallory = await researcherWithAccess(
        first,
        `race${round}@example.org`,
        'guarded',
        'aggregate',
      );
      const specs = [
        { where: { column: 'hospital', op: 'eq', value: 'h01' } },
        {
          where: {
            and: [
              { column: 'hospital', op: 'eq', value: 'h01' },
              { column: 'zip', op: 'ne', value: zip },
            ],
          },
        },
      ];
      const jobs = [];
      for (const spec of specs) {
        const submitted = await submitQuery(
          first,
          { user: mallory, source: 'test' },
          {
            dataset: 'guarded',
            ...spec,
            measures: [{ fn: 'patients' }],
          },
        );
        const claimed = await queryJobsRepository(first.catalog.db).claim(
          'test-worker',
          submitted.id,
        );
        expect(claimed).toBeDefined();
        jobs.push(claimed!);
      }
      // Both at once: one on each server.
      await Promise.all(
        jobs.map((job, index) =>
          executeQueryJob(index === 0 ? first : second, job, 'test-worker', {
            logger: createLogger('silent'),
          }),
        ),
      );
      const figures = [];
      for (const job of jobs) {
        const view = await getQuery(first, mallory, job.id);
        expect(view.status).toBe('succeeded');
        const page = await readResultPage(first, mallory, job.id, { page: 1, pageSize: 10 });
        const row = page.rows[0] as Row | undefined;
        figures.push(row && !row.suppressed ? Number(row.patients) : undefined);
      }
      const [all, rest] = figures;
      const derived = all !== undefined && rest !== undefined ? all - rest : undefined;
      attempt(
        'two submissions at once',
        derived !== undefined && small(derived),
        `h01 ${all} − h01 without ${zip} ${rest} = ${derived}`,
      );
    }
  }, 300_000);
});
