import { readFile } from 'node:fs/promises';
import { lakeColumns, type DatasetContract } from '@medlake/shared';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { catalogBackends } from '../../../test/catalog-backends.ts';
import { createTestPlatform, testActor, type TestPlatform } from '../../../test/helper.ts';
import { contractFile, ingest, synthea } from '../../../test/ingest-helpers.ts';
import { testSparkUrl } from '../../../test/spark.ts';
import { releasesRepository } from '../../catalog/releases-repository.ts';
import type { CatalogKind } from '../../catalog/catalog.ts';
import type { User } from '../../catalog/users-repository.ts';
import type { QueryEngine } from '../../engines/types.ts';
import { releaseFilesGlob, releaseFolder } from '../../ingest/lake-keys.ts';
import type { Platform } from '../../platform.ts';
import { addUser, grantDatasetAccess } from '../manage-access.ts';
import { addHospital, saveDataset } from '../manage-datasets.ts';
import { describeDataset } from './describe-dataset.ts';
import { dictionaryPairsKey } from '../../ingest/release-pairs.ts';

type Entry = {
  code: string;
  label: string | null;
  unit: string | null;
  rows: number;
  patients: number;
};

const setups: Array<[string, { catalog: CatalogKind; env: () => Record<string, string> }]> = [
  ...catalogBackends().map(
    (catalog): [string, { catalog: CatalogKind; env: () => Record<string, string> }] => [
      `DuckDB, ${catalog}`,
      { catalog, env: () => ({}) },
    ],
  ),
  [
    'Spark, pglite',
    {
      catalog: 'pglite',
      env: () => ({ MEDLAKE_ENGINE: 'spark', SPARK_CONNECT_URL: testSparkUrl() }),
    },
  ],
];

/** A statement's read of a release's rows: its files by name, or its folder's glob. */
function rowsOf(releaseId: string): RegExp {
  return new RegExp(`release=${releaseId}/(\\*|part-\\d+)\\.parquet`);
}

/** The first half of a Synthea export: a release that a whole one then replaces. */
async function firstHalf(file: string): Promise<string> {
  const lines = (await readFile(file, 'utf8')).trimEnd().split('\n');
  return `${lines.slice(0, Math.ceil(lines.length / 2)).join('\n')}\n`;
}

/**
 * The dictionary's counts are stored at publish and read from the catalog; these tests hold
 * them to a direct count over the lake (the oracle) after two months at each of two hospitals
 * and a replaced release, for a user granted both hospitals and one granted one of them, where
 * pseudonyms are per hospital and where the hospitals share an id space (a patient at both).
 */
describe.each(setups)('the data dictionary stored at publish, on %s', (_, setup) => {
  let platform: TestPlatform;
  const users: Record<'all' | 'south' | 'southAggregate', User> = {} as never;
  const datasets = ['by-hospital', 'shared-ids'];

  beforeAll(async () => {
    platform = await createTestPlatform(setup.catalog, setup.env());
    for (const id of ['north', 'south']) {
      await addHospital(platform, testActor, { id, name: `Hospital ${id}` });
    }
    const contract = JSON.parse(await readFile(contractFile('synthea-observations'), 'utf8'));
    // Without the release ledger, so that aggregate users see counts to compare.
    const privacy = { releaseLedger: false };
    await saveDataset(platform, {
      ...contract,
      name: 'by-hospital',
      title: 'By hospital',
      privacy,
    });
    await saveDataset(platform, {
      ...contract,
      name: 'shared-ids',
      title: 'Shared ids',
      patientIdSpace: 'shared',
      privacy,
    });
    for (const dataset of datasets) {
      const uploads = [
        { hospital: 'north', month: '2020-12', file: synthea('2020-12') },
        { hospital: 'north', month: '2021-03', text: await firstHalf(synthea('2021-03')) },
        { hospital: 'south', month: '2021-03', file: synthea('2021-03') },
        { hospital: 'south', month: '2021-04', file: synthea('2021-04') },
        // Replaces north's first March: its rows must drop out of every count.
        { hospital: 'north', month: '2021-03', file: synthea('2021-03') },
      ];
      for (const upload of uploads) {
        const result = await ingest(platform, { dataset, ...upload });
        expect(result.status).toBe('published');
      }
    }
    const grant = async (
      email: string,
      level: 'row' | 'aggregate',
      hospitals?: string[],
    ): Promise<User> => {
      const user = await addUser(platform, testActor, { email, name: email, role: 'researcher' });
      for (const datasetId of datasets) {
        await grantDatasetAccess(platform, testActor, { email, datasetId, level, hospitals });
      }
      return user;
    };
    users.all = await grant('all@example.org', 'row');
    users.south = await grant('south@example.org', 'row', ['south']);
    users.southAggregate = await grant('south-aggregate@example.org', 'aggregate', ['south']);
  }, 600_000);

  afterAll(async () => {
    await platform?.dispose();
  });

  /** Every code's figures counted straight from the current releases' files of these hospitals. */
  async function oracle(dataset: string, hospitals: string[]): Promise<Entry[]> {
    const releases = (await releasesRepository(platform.catalog.db).list({ datasetId: dataset }))
      .filter((release) => release.current && hospitals.includes(release.hospitalId))
      .map((release) => releaseFolder({ ...release, releaseId: release.id }));
    const contract = (
      await platform.catalog.db
        .selectFrom('datasets')
        .select('contract')
        .where('id', '=', dataset)
        .executeTakeFirstOrThrow()
    ).contract as DatasetContract;
    const column = (role: string) =>
      platform.engine.dialect.quoteIdentifier(
        lakeColumns(contract).find((lake) => lake.role === role)!.name,
      );
    const from = platform.engine.dialect.scanParquet(
      releases.map((folder) => releaseFilesGlob(platform.store.locate(folder))),
    );
    const rows = await platform.engine.rows({
      sql: `SELECT ${column('code')} AS code, min(${column('code_label')}) AS label,
        min(${column('unit')}) AS unit, count(*) AS n, count(DISTINCT patient) AS p
        FROM ${from} GROUP BY 1`,
      params: [],
    });
    return rows
      .map((row) => ({
        code: String(row.code),
        label: (row.label as string | null) ?? null,
        unit: (row.unit as string | null) ?? null,
        rows: Number(row.n),
        patients: Number(row.p),
      }))
      .sort((a, b) => (a.code < b.code ? -1 : a.code > b.code ? 1 : 0));
  }

  /** The platform with an engine that refuses every statement: a request must not need it. */
  function withoutLakeScans(): Platform {
    const engine: QueryEngine = {
      ...platform.engine,
      kind: platform.engine.kind,
      dialect: platform.engine.dialect,
      rows: () => Promise.reject(new Error('the dictionary request scanned the lake')),
    };
    return { ...platform, engine };
  }

  /** The platform with an engine that keeps the SQL of every statement it runs. */
  function recordingStatements(): { platform: Platform; statements: string[] } {
    const statements: string[] = [];
    const engine: QueryEngine = {
      ...platform.engine,
      kind: platform.engine.kind,
      dialect: platform.engine.dialect,
      rows: (statement, options) => {
        statements.push(statement.sql);
        return platform.engine.rows(statement, options);
      },
      writeFile: (statement, target, format, options) => {
        statements.push(statement.sql);
        return platform.engine.writeFile(statement, target, format, options);
      },
    };
    return { platform: { ...platform, engine }, statements };
  }

  /** The current releases of a dataset, with their hospitals and months. */
  async function currentReleases(dataset: string) {
    return (await releasesRepository(platform.catalog.db).list({ datasetId: dataset })).filter(
      (release) => release.current,
    );
  }

  /** The dictionary of both hospitals and of south alone, each equal to a direct count. */
  async function expectFiguresAsCounted(dataset: string): Promise<void> {
    const all = await describeDataset(withoutLakeScans(), users.all, dataset);
    expect(figures(all.codes)).toEqual(await oracle(dataset, ['north', 'south']));
    const south = await describeDataset(withoutLakeScans(), users.south, dataset);
    expect(figures(south.codes)).toEqual(await oracle(dataset, ['south']));
  }

  const figures = (codes: ReadonlyArray<Record<string, unknown>>) =>
    codes.map(({ code, label, unit, rows, patients }) => ({ code, label, unit, rows, patients }));

  it.each(datasets)(
    'reads %s from the catalog, equal to a direct count over the lake for each grant',
    async (dataset) => {
      const readOnly = withoutLakeScans();
      const all = await describeDataset(readOnly, users.all, dataset);
      const expectedAll = await oracle(dataset, ['north', 'south']);
      expect(figures(all.codes)).toEqual(expectedAll);
      expect(all.releases).toBe(4);

      const south = await describeDataset(readOnly, users.south, dataset);
      const expectedSouth = await oracle(dataset, ['south']);
      expect(south.hospitals).toEqual(['south']);
      expect(figures(south.codes)).toEqual(expectedSouth);
      // The grant's restriction shows in the counts: some code has fewer rows at south alone.
      expect(expectedSouth).not.toEqual(expectedAll);

      // Aggregate access: the same figures, codes of fewer patients than the threshold left out.
      const aggregate = await describeDataset(readOnly, users.southAggregate, dataset);
      const shown = expectedSouth.filter((entry) => entry.patients >= aggregate.threshold);
      expect(shown.length).toBeGreaterThan(0);
      expect(shown.length).toBeLessThan(expectedSouth.length);
      expect(figures(aggregate.codes)).toEqual(shown);
    },
    120_000,
  );

  it('counts a patient at both hospitals once where the hospitals share an id space', async () => {
    const [north, south, both] = await Promise.all([
      oracle('shared-ids', ['north']),
      oracle('shared-ids', ['south']),
      oracle('shared-ids', ['north', 'south']),
    ]);
    // The fixture has patients at both: summing per hospital would overcount them.
    const overlapping = both.filter((entry) => {
      const sum = (list: Entry[]) => list.find((other) => other.code === entry.code)?.patients ?? 0;
      return entry.patients < sum(north) + sum(south);
    });
    expect(overlapping.length).toBeGreaterThan(0);
    const dictionary = await describeDataset(withoutLakeScans(), users.all, 'shared-ids');
    expect(figures(dictionary.codes)).toEqual(both);
  }, 120_000);

  it('counts a dataset without stored figures on its first request, and stores them', async () => {
    // As for a dataset published before the catalog kept the figures.
    await platform.catalog.db
      .deleteFrom('dictionary_scopes')
      .where('dataset_id', '=', 'by-hospital')
      .execute();
    await expect(describeDataset(withoutLakeScans(), users.all, 'by-hospital')).rejects.toThrow(
      'scanned the lake',
    );
    const counted = await describeDataset(platform, users.south, 'by-hospital');
    expect(figures(counted.codes)).toEqual(await oracle('by-hospital', ['south']));
    // Only south was counted for that request; north is counted on the next that needs it.
    const all = await describeDataset(platform, users.all, 'by-hospital');
    expect(figures(all.codes)).toEqual(await oracle('by-hospital', ['north', 'south']));
    const again = await describeDataset(withoutLakeScans(), users.all, 'by-hospital');
    expect(again.codes).toEqual(all.codes);
  }, 120_000);

  it.each(datasets)(
    "publishing a third month of %s reads the other releases' pairs files, never their rows",
    async (dataset) => {
      // The releases the count covers besides the new one: north's, or every hospital's where
      // they share an id space.
      const others = (await currentReleases(dataset)).filter(
        (release) => dataset === 'shared-ids' || release.hospitalId === 'north',
      );
      expect(others.length).toBeGreaterThanOrEqual(2);
      const recording = recordingStatements();
      const result = await ingest(recording.platform, {
        dataset,
        hospital: 'north',
        month: '2021-04',
        file: synthea('2021-04'),
      });
      expect(result.status).toBe('published');
      const sql = recording.statements.join('\n');
      for (const other of others) {
        expect(sql).not.toMatch(rowsOf(other.id));
        expect(sql).toContain(`release=${other.id}${dictionaryPairsKey('')}`);
      }
      // The new release's rows: DuckDB's ingest wrote its pairs file, so the publish reads
      // them not at all; on Spark the publish reads them once, for its pairs file.
      const newRows = rowsOf('releaseId' in result ? result.releaseId : '');
      if (platform.engine.kind === 'spark') expect(sql).toMatch(newRows);
      else expect(sql).not.toMatch(newRows);
      await expectFiguresAsCounted(dataset);
    },
    120_000,
  );

  it.each(datasets)(
    'replacing a month of %s drops the replaced release from the count without reading it',
    async (dataset) => {
      const replaced = (await currentReleases(dataset)).find(
        (release) => release.hospitalId === 'north' && release.month === '2020-12',
      )!;
      const before = await oracle(dataset, ['north', 'south']);
      const recording = recordingStatements();
      const result = await ingest(recording.platform, {
        dataset,
        hospital: 'north',
        month: '2020-12',
        text: await firstHalf(synthea('2020-12')),
      });
      expect(result.status).toBe('published');
      expect(recording.statements.join('\n')).not.toContain(`release=${replaced.id}/`);
      // The half month has fewer rows: the replaced release's pairs no longer count.
      expect(await oracle(dataset, ['north', 'south'])).not.toEqual(before);
      await expectFiguresAsCounted(dataset);
    },
    120_000,
  );

  it('a publish that fails after its count leaves neither its pairs file nor their record', async () => {
    const replaced = (await currentReleases('by-hospital')).find(
      (release) => release.hospitalId === 'south' && release.month === '2021-04',
    )!;
    const recorded = async () =>
      (
        await platform.catalog.db
          .selectFrom('dictionary_release_pairs')
          .select('release_id')
          .execute()
      )
        .map((row) => row.release_id)
        .sort();
    const [recordedBefore, keysBefore] = [
      await recorded(),
      (await platform.store.list('lake/by-hospital/hospital=south/')).sort(),
    ];
    // The catalog refuses the publishing transaction, after the new pairs were written (by
    // the ingest on DuckDB, by the count on Spark): the keys in the lake at that moment.
    const isPairs = (key: string) => key.endsWith(dictionaryPairsKey(''));
    const atPublish: string[] = [];
    const failing: Platform = {
      ...platform,
      audit: {
        ...platform.audit,
        record: async (event, trx) => {
          if (event.action !== 'release.publish') return platform.audit.record(event, trx);
          atPublish.push(...(await platform.store.list('lake/by-hospital/hospital=south/')));
          throw new Error('the catalog refused the publish');
        },
      },
    };
    await expect(
      ingest(failing, {
        dataset: 'by-hospital',
        hospital: 'south',
        month: '2021-04',
        text: await firstHalf(synthea('2021-04')),
      }),
    ).rejects.toThrow('the catalog refused the publish');
    expect(atPublish.filter(isPairs)).toHaveLength(keysBefore.filter(isPairs).length + 1);
    expect((await platform.store.list('lake/by-hospital/hospital=south/')).sort()).toEqual(
      keysBefore,
    );
    expect(await recorded()).toEqual(recordedBefore);
    expect((await currentReleases('by-hospital')).map((release) => release.id)).toContain(
      replaced.id,
    );
    await expectFiguresAsCounted('by-hospital');
  }, 120_000);

  it("writes each release's pairs beside its files: its distinct pairs and rows, pseudonyms only", async () => {
    const release = (await currentReleases('by-hospital')).find(
      (candidate) => candidate.hospitalId === 'south' && candidate.month === '2021-03',
    )!;
    const folder = platform.store.locate(releaseFolder({ ...release, releaseId: release.id }));
    const pairsFile = platform.store.locate(
      dictionaryPairsKey(releaseFolder({ ...release, releaseId: release.id })),
    );
    const { dialect } = platform.engine;
    const pairs = await platform.engine.rows({
      sql: `SELECT code, patient, row_count, label, unit FROM ${dialect.scanParquet([pairsFile])} AS p`,
      params: [],
    });
    const key = (row: Record<string, unknown>) => `${String(row.code)}|${String(row.patient)}`;
    // The same pairs and rows as the release's own rows give.
    const contract = JSON.parse(
      await readFile(contractFile('synthea-observations'), 'utf8'),
    ) as DatasetContract;
    const code = dialect.quoteIdentifier(
      lakeColumns(contract).find((column) => column.role === 'code')!.name,
    );
    const counted = await platform.engine.rows({
      sql: `SELECT ${code} AS code, patient, count(*) AS n
        FROM ${dialect.scanParquet([releaseFilesGlob(folder)])} AS r GROUP BY ${code}, patient`,
      params: [],
    });
    expect(new Map(pairs.map((row) => [key(row), Number(row.row_count)]))).toEqual(
      new Map(counted.map((row) => [key(row), Number(row.n)])),
    );
    expect(pairs.length).toBeGreaterThan(new Set(pairs.map((row) => row.code)).size);
    // Pseudonyms, never the hospital's patient ids (the export's MRN column).
    const csv = (await readFile(synthea('2021-03'), 'utf8')).trimEnd().split('\n').slice(1);
    const mrns = new Set(csv.map((line) => line.split(',')[0]));
    expect(mrns.size).toBeGreaterThan(0);
    for (const row of pairs) {
      expect(mrns.has(String(row.patient))).toBe(false);
      expect(JSON.stringify(row)).not.toMatch(/\d{3}-\d{2}-\d{4}/);
    }
  });

  it('writes the pairs files again when a recorded one is lost, and counts as before', async () => {
    const lost = (await currentReleases('by-hospital')).find(
      (release) => release.hospitalId === 'north',
    )!;
    const key = dictionaryPairsKey(releaseFolder({ ...lost, releaseId: lost.id }));
    await platform.store.delete(key);
    await platform.catalog.db
      .deleteFrom('dictionary_scopes')
      .where('dataset_id', '=', 'by-hospital')
      .execute();
    const counted = await describeDataset(platform, users.all, 'by-hospital');
    expect(figures(counted.codes)).toEqual(await oracle('by-hospital', ['north', 'south']));
    expect(await platform.store.list(`${key.slice(0, key.lastIndexOf('/'))}/`)).toEqual([key]);
    await expectFiguresAsCounted('by-hospital');
  }, 120_000);

  it('writes the pairs files releases lack when their scope is next counted, and records them', async () => {
    // As for releases published before the pairs files: none recorded, none in the lake.
    const releases = await currentReleases('shared-ids');
    await platform.catalog.db
      .deleteFrom('dictionary_release_pairs')
      .where(
        'release_id',
        'in',
        releases.map((release) => release.id),
      )
      .execute();
    for (const release of releases) {
      await platform.store.delete(
        dictionaryPairsKey(releaseFolder({ ...release, releaseId: release.id })),
      );
    }
    await platform.catalog.db
      .deleteFrom('dictionary_scopes')
      .where('dataset_id', '=', 'shared-ids')
      .execute();
    const counted = await describeDataset(platform, users.all, 'shared-ids');
    expect(figures(counted.codes)).toEqual(await oracle('shared-ids', ['north', 'south']));
    const recorded = await platform.catalog.db
      .selectFrom('dictionary_release_pairs')
      .select('release_id')
      .where(
        'release_id',
        'in',
        releases.map((release) => release.id),
      )
      .execute();
    expect(recorded.map((row) => row.release_id).sort()).toEqual(
      releases.map((release) => release.id).sort(),
    );
    // The next publish reads them instead of the rows.
    const recording = recordingStatements();
    const result = await ingest(recording.platform, {
      dataset: 'shared-ids',
      hospital: 'south',
      month: '2020-12',
      file: synthea('2020-12'),
    });
    expect(result.status).toBe('published');
    const sql = recording.statements.join('\n');
    for (const release of releases) {
      expect(sql).not.toMatch(rowsOf(release.id));
    }
    await expectFiguresAsCounted('shared-ids');
  }, 120_000);
});
