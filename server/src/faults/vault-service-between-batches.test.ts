import { randomBytes } from 'node:crypto';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestPlatform, type TestPlatform } from '../../test/helper.ts';
import {
  ingest,
  listFiles,
  prepareDataset,
  syntheaHeader,
  syntheaRow,
} from '../../test/ingest-helpers.ts';
import { readParquetObjects } from '../../test/parquet.ts';
import { publishedObjects } from '../../test/published-objects.ts';
import { startVaultService, type TestVaultService } from '../../test/vault-service.ts';
import { jobsRepository } from '../catalog/jobs-repository.ts';
import { releasesRepository } from '../catalog/releases-repository.ts';
import { ingestJobKind } from '../use-cases/ingest-upload.ts';
import { makeVaultCertificates, vaultCertificateFiles } from '../vault/vault-certificates.ts';
import { openVault, type Vault } from '../vault/vault.ts';

/** One more patient than the ingest sends the vault at once: the upload takes two batches. */
const patients = 50_001;

/**
 * The vault service failing between two batches of one upload's patient ids: the first batch
 * is stored and answered, the second fails inside the vault. Through the whole platform (PGlite
 * catalog, DuckDB, the vault service over mutual TLS): nothing is published or left behind, no
 * identifier is told, and once the vault is well the same upload publishes with one pseudonym
 * per patient, the same as any later upload of those patients gets.
 */
describe('the vault service failing between batches of an upload', () => {
  let scratch: string;
  let vault: Vault;
  let service: TestVaultService;
  let platform: TestPlatform;
  let csv: string;
  const serviceLog: string[] = [];
  const fault = { on: true, calls: 0 };

  beforeAll(async () => {
    scratch = await mkdtemp(path.join(tmpdir(), 'medlake-vault-batches-'));
    const certs = path.join(scratch, 'certs');
    await makeVaultCertificates(certs, { hosts: [] });
    vault = openVault(path.join(scratch, 'vault'), randomBytes(32));
    // The real vault; its second batch of an upload, while the fault is on, is stored and then
    // fails, as a vault whose disk gives way after the write would.
    const faulty: Vault = {
      ...vault,
      pseudonymize(scope, ids) {
        fault.calls += 1;
        const entries = vault.pseudonymize(scope, ids);
        if (fault.on && fault.calls === 2) throw new Error('disk I/O error');
        return entries;
      },
    };
    const started = await startVaultService(faulty, certs, serviceLog);
    service = started.service;
    const port = started.port;
    platform = await createTestPlatform('pglite', {
      MEDLAKE_VAULT_URL: `https://localhost:${port}`,
      MEDLAKE_VAULT_CA_PATH: path.join(certs, vaultCertificateFiles.caCert),
      MEDLAKE_VAULT_CLIENT_CERT_PATH: path.join(certs, vaultCertificateFiles.clientCert),
      MEDLAKE_VAULT_CLIENT_KEY_PATH: path.join(certs, vaultCertificateFiles.clientKey),
    });
    await prepareDataset(platform, 'synthea-observations');
    const lines = Array.from({ length: patients }, (_, index) =>
      syntheaRow({
        patient: `MRN-${String(index).padStart(6, '0')}`,
        index,
        city: 'Boston',
        zip: '02118',
        date: '2020-12-15',
        category: 'laboratory',
        code: '2339-0',
        description: 'Glucose',
        value: 90 + (index % 40),
        unit: 'mg/dL',
      }),
    );
    csv = `${syntheaHeader}\n${lines.join('\n')}\n`;
  }, 120_000);

  afterAll(async () => {
    await platform?.dispose();
    await service?.close();
    vault?.close();
    await rm(scratch, { recursive: true, force: true });
  });

  const patientCount = () => {
    let count = 0;
    vault.findPatientPseudonym(() => {
      count += 1;
      return false;
    });
    return count;
  };

  /** The patient column of a published release, in order. */
  async function pseudonymsOf(releaseId: string): Promise<string[]> {
    const release = await releasesRepository(platform.catalog.db).get(releaseId);
    const rows = await readParquetObjects(platform.store, release?.files ?? []);
    return rows.map((row) => String(row.patient)).sort();
  }

  it('publishes nothing, tells no identifier, and the same upload then publishes whole', async () => {
    const error = await ingest(platform, { text: csv, month: '2020-12' }).then(
      () => undefined,
      (caught: unknown) => caught,
    );
    expect(fault.calls).toBe(2);
    expect(String(error)).toMatch(/the vault service at https:\/\/localhost:\d+ failed/);
    const told = [String(error), (error as Error).stack ?? '', ...serviceLog].join('\n');
    expect(told).not.toMatch(/MRN-\d|999-00-|Testperson|Main Street/);

    // Nothing published, nothing of the attempt left in the lake, the work area or landing.
    const releases = releasesRepository(platform.catalog.db);
    expect(await releases.list()).toEqual([]);
    expect(await platform.store.list('lake/')).toEqual([]);
    expect(await readdir(platform.layout.work).catch(() => [])).toEqual([]);
    expect(await listFiles(path.join(platform.env.MEDLAKE_HOME, 'objects/landing'))).toEqual([]);
    const jobs = await jobsRepository(platform.catalog.db).list(ingestJobKind, null, {
      page: 1,
      pageSize: 10,
    });
    expect(jobs.jobs.map((job) => job.status)).toEqual(['failed']);
    expect(JSON.stringify(jobs.jobs)).not.toMatch(/MRN-\d|999-00-|Testperson|Main Street/);
    const audited = await platform.catalog.db.selectFrom('audit_log').selectAll().execute();
    expect(audited.some((entry) => entry.action === 'upload' && entry.outcome === 'failure')).toBe(
      true,
    );
    expect(JSON.stringify(audited)).not.toMatch(/MRN-\d|999-00-|Testperson|Main Street/);
    // Both batches reached the vault's table before the failure: they stay, and serve the retry.
    expect(patientCount()).toBe(patients);

    fault.on = false;
    const retried = await ingest(platform, { text: csv, month: '2020-12' });
    expect(retried).toMatchObject({ status: 'published', rows: patients });
    if (retried.status !== 'published') return;
    const published = await pseudonymsOf(retried.releaseId);
    expect(new Set(published).size).toBe(patients);
    expect(patientCount()).toBe(patients);
    expect((await platform.store.list('lake/')).sort()).toEqual(
      await publishedObjects(platform.catalog.db, await releases.list()),
    );

    // A clean ingest of the same patients, as the next month's, gives them the same pseudonyms.
    const next = await ingest(platform, {
      text: csv.replaceAll('2020-12-15T', '2021-01-15T'),
      month: '2021-01',
    });
    expect(next).toMatchObject({ status: 'published', rows: patients });
    if (next.status !== 'published') return;
    expect(await pseudonymsOf(next.releaseId)).toEqual(published);
    expect(patientCount()).toBe(patients);
  }, 240_000);
});
