import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { parse } from 'csv-parse/sync';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { catalogBackends } from '../../test/catalog-backends.ts';
import { createTestPlatform, testActor, type TestPlatform } from '../../test/helper.ts';
import {
  fixtureLines,
  ingest,
  listFiles,
  prepareDataset,
  contractFile,
  monthOfFullExport,
  synthea,
} from '../../test/ingest-helpers.ts';
import { readParquetObjects } from '../../test/parquet.ts';
import { publishedObjects } from '../../test/published-objects.ts';
import type { CatalogKind } from '../catalog/catalog.ts';
import type { StorageKind } from '../storage/object-store.ts';
import { jobsRepository } from '../catalog/jobs-repository.ts';
import { releasesRepository } from '../catalog/releases-repository.ts';
import { openConfiguredVault } from '../vault/configured-vault.ts';
import type { IngestResult } from './ingest-upload.ts';
import { addHospital, saveDataset } from './manage-datasets.ts';

function published(result: IngestResult) {
  if (result.status !== 'published')
    throw new Error(`expected published, got ${JSON.stringify(result)}`);
  return result;
}

async function fixtureMrns(month: '2020-12' | '2021-03'): Promise<Set<string>> {
  const rows = parse(await readFile(synthea(month)), { columns: true }) as Array<{ MRN: string }>;
  return new Set(rows.map((row) => row.MRN));
}

/** Each catalog with the lake on local disk, and the embedded catalog with the lake on S3. */
const deployments: Array<[string, CatalogKind, StorageKind]> = [
  ...catalogBackends().map((kind): [string, CatalogKind, StorageKind] => [kind, kind, 'local']),
  ['pglite, lake on S3', 'pglite', 's3'],
];

describe.each(deployments)('ingesting monthly exports (catalog on %s)', (_, kind, storage) => {
  let platform: TestPlatform;

  beforeEach(async () => {
    platform = await createTestPlatform(kind, {}, { storage });
    await prepareDataset(platform, 'synthea-observations');
  });

  afterEach(async () => {
    await platform.dispose();
  });

  it('publishes each month as the current release, with every row and patient', async () => {
    const december = published(
      await ingest(platform, { file: synthea('2020-12'), month: '2020-12' }),
    );
    const march = published(await ingest(platform, { file: synthea('2021-03'), month: '2021-03' }));
    expect(december.rows).toBe(1052);
    expect(march.rows).toBe(867);
    expect(december.quality.patients).toBe((await fixtureMrns('2020-12')).size);

    const releases = releasesRepository(platform.catalog.db);
    const current = await releases.current('synthea-observations', 'synthea', '2020-12');
    expect(current?.id).toBe(december.releaseId);
    const rows = await readParquetObjects(platform.store, current?.files ?? []);
    expect(rows).toHaveLength(1052);
    expect(march.quality.comparedWith).toEqual({ releaseId: december.releaseId, month: '2020-12' });

    const job = await jobsRepository(platform.catalog.db).get(december.jobId);
    expect(job?.status).toBe('succeeded');
    expect(job?.progress).toMatchObject({ bytes: 317582, phase: expect.any(String) });
    // The raw upload is gone once published.
    expect(await platform.store.list('landing/')).toEqual([]);
  });

  /** Every pseudonym of a release, mapped back to the real id through the vault. */
  async function realIdsOf(releaseId: string): Promise<Map<string, string>> {
    const release = await releasesRepository(platform.catalog.db).get(releaseId);
    const rows = await readParquetObjects(platform.store, release?.files ?? []);
    const vault = await openConfiguredVault(platform.env);
    try {
      const pseudonyms = new Set(rows.map((row) => row.patient as string));
      return new Map(
        [...pseudonyms].map((pseudonym) => [
          pseudonym,
          vault.reidentify(pseudonym, { custodian: 'test', reason: 'checking linkage' }).realId,
        ]),
      );
    } finally {
      vault.close();
    }
  }

  function mrnsOf(csv: string): Set<string> {
    return new Set((parse(csv, { columns: true }) as Array<{ MRN: string }>).map((row) => row.MRN));
  }

  it('gives a patient the same pseudonym in every month, and every patient their own', async () => {
    // Two months of the full export that share 13 patients.
    const june2016 = await monthOfFullExport('2016-06');
    const june2017 = await monthOfFullExport('2017-06');
    const first = await realIdsOf(
      published(await ingest(platform, { text: june2016, month: '2016-06' })).releaseId,
    );
    const second = await realIdsOf(
      published(await ingest(platform, { text: june2017, month: '2017-06' })).releaseId,
    );

    expect(new Set(first.values())).toEqual(mrnsOf(june2016));
    expect(new Set(second.values())).toEqual(mrnsOf(june2017));
    const sharedMrns = [...mrnsOf(june2016)].filter((mrn) => mrnsOf(june2017).has(mrn)).sort();
    expect(sharedMrns).toHaveLength(13);
    const sharedPseudonyms = [...first.keys()].filter((pseudonym) => second.has(pseudonym));
    expect(sharedPseudonyms.map((pseudonym) => first.get(pseudonym)).sort()).toEqual(sharedMrns);
    // No patient has two pseudonyms across the two months.
    const all = new Map([...first, ...second]);
    expect(new Set(all.values()).size).toBe(all.size);
  });

  it('links the two monthly fixture files exactly as far as they share patients', async () => {
    const december = await realIdsOf(
      published(await ingest(platform, { file: synthea('2020-12'), month: '2020-12' })).releaseId,
    );
    const march = await realIdsOf(
      published(await ingest(platform, { file: synthea('2021-03'), month: '2021-03' })).releaseId,
    );
    const decemberMrns = await fixtureMrns('2020-12');
    const marchMrns = await fixtureMrns('2021-03');
    expect(new Set(december.values())).toEqual(decemberMrns);
    expect(new Set(march.values())).toEqual(marchMrns);
    const sharedMrns = [...decemberMrns].filter((mrn) => marchMrns.has(mrn));
    const sharedPseudonyms = [...december.keys()].filter((pseudonym) => march.has(pseudonym));
    expect(sharedPseudonyms.length).toBe(sharedMrns.length);
  });

  it('keeps hospitals apart unless the contract declares a shared id space', async () => {
    await addHospital(platform, testActor, { id: 'other', name: 'Other hospital' });
    const pseudonymsOf = async (result: IngestResult) => {
      const release = await releasesRepository(platform.catalog.db).get(
        published(result).releaseId,
      );
      const rows = await readParquetObjects(platform.store, release?.files ?? []);
      return new Set(rows.map((row) => row.patient as string));
    };
    const here = await pseudonymsOf(
      await ingest(platform, { file: synthea('2020-12'), month: '2020-12' }),
    );
    const there = await pseudonymsOf(
      await ingest(platform, { file: synthea('2020-12'), month: '2020-12', hospital: 'other' }),
    );
    expect([...here].filter((pseudonym) => there.has(pseudonym))).toEqual([]);

    const shared = JSON.parse(
      await readFile(contractFile('synthea-observations'), 'utf8'),
    ) as Record<string, unknown>;
    await saveDataset(platform, { ...shared, name: 'shared-ids', patientIdSpace: 'shared' });
    const sharedHere = await pseudonymsOf(
      await ingest(platform, { file: synthea('2020-12'), month: '2020-12', dataset: 'shared-ids' }),
    );
    const sharedThere = await pseudonymsOf(
      await ingest(platform, {
        file: synthea('2020-12'),
        month: '2020-12',
        dataset: 'shared-ids',
        hospital: 'other',
      }),
    );
    expect(sharedThere).toEqual(sharedHere);
  });

  it('recognises an identical re-upload and publishes nothing new', async () => {
    const first = published(await ingest(platform, { file: synthea('2020-12'), month: '2020-12' }));
    const again = await ingest(platform, { file: synthea('2020-12'), month: '2020-12' });
    expect(again).toMatchObject({ status: 'unchanged', releaseId: first.releaseId });
    expect(await releasesRepository(platform.catalog.db).list()).toHaveLength(1);
  });

  it('makes a corrected re-upload current and keeps the old release readable by id', async () => {
    const first = published(await ingest(platform, { file: synthea('2020-12'), month: '2020-12' }));
    const { header, rows } = await fixtureLines('2020-12');
    const corrected = published(
      await ingest(platform, {
        text: [header, ...rows.slice(0, 500)].join('\n'),
        month: '2020-12',
      }),
    );
    const releases = releasesRepository(platform.catalog.db);
    expect((await releases.current('synthea-observations', 'synthea', '2020-12'))?.id).toBe(
      corrected.releaseId,
    );
    const old = await releases.get(first.releaseId);
    expect(old?.current).toBe(false);
    expect(await readParquetObjects(platform.store, old?.files ?? [])).toHaveLength(1052);
    expect(corrected.rows).toBe(500);
  });

  it('keeps the previous release current and leaves no file behind when an upload fails', async () => {
    const first = published(await ingest(platform, { file: synthea('2020-12'), month: '2020-12' }));
    const { header, rows } = await fixtureLines('2020-12');
    const broken = [
      header,
      ...rows.slice(0, 10),
      rows[10]?.replace('2020-12-', '2020-13-'),
      ...rows.slice(11),
    ].join('\n');
    const result = await ingest(platform, { text: broken, month: '2020-12' });
    expect(result.status).toBe('rejected');

    const releases = releasesRepository(platform.catalog.db);
    expect((await releases.current('synthea-observations', 'synthea', '2020-12'))?.id).toBe(
      first.releaseId,
    );
    expect(await releases.list()).toHaveLength(1);
    expect(await platform.store.list('landing/')).toEqual([]);
    expect(await listFiles(platform.layout.work)).toEqual([]);
    const kept = (await releases.get(first.releaseId))!;
    expect((await platform.store.list('lake/')).sort()).toEqual(
      await publishedObjects(platform.catalog.db, [kept]),
    );
    expect((await jobsRepository(platform.catalog.db).get(result.jobId))?.status).toBe('failed');
  });

  it('refuses an unknown dataset, hospital or month format before reading anything', async () => {
    await expect(
      ingest(platform, { file: synthea('2020-12'), month: '2020-12', dataset: 'nope' }),
    ).rejects.toMatchObject({ code: 'dataset_not_found' });
    await expect(
      ingest(platform, { file: synthea('2020-12'), month: '2020-12', hospital: 'nope' }),
    ).rejects.toMatchObject({ code: 'hospital_not_found' });
    await expect(
      ingest(platform, { file: synthea('2020-12'), month: '2020-1' }),
    ).rejects.toMatchObject({ code: 'invalid_input' });
    expect(
      existsSync(platform.layout.landing) ? await platform.store.list('landing/') : [],
    ).toEqual([]);
  });
});

describe('landing retention', () => {
  it('keeps the raw upload in the landing zone when configured to', async () => {
    const platform = await createTestPlatform('pglite', { MEDLAKE_LANDING_RETENTION: 'keep' });
    try {
      await prepareDataset(platform, 'synthea-observations');
      const result = published(
        await ingest(platform, { file: synthea('2020-12'), month: '2020-12' }),
      );
      const landed = await platform.store.list('landing/');
      expect(landed).toEqual([`landing/${result.jobId}.csv`]);
      expect(
        (await readFile(platform.store.locate(landed[0] ?? ''))).equals(
          await readFile(synthea('2020-12')),
        ),
      ).toBe(true);
    } finally {
      await platform.dispose();
    }
  });
});
