import type { ChildProcessWithoutNullStreams } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import { parse } from 'csv-parse/sync';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestPlatform, type TestPlatform } from '../../test/helper.ts';
import { ingest, listFiles, prepareDataset, synthea } from '../../test/ingest-helpers.ts';
import { runMedlake, startMedlake, stopMedlake } from '../../test/medlake-process.ts';
import { readParquetObjects } from '../../test/parquet.ts';
import { releasesRepository } from '../catalog/releases-repository.ts';
import { openLockedCatalog, openPrivacySecrets } from '../platform.ts';
import { remoteVaultClient } from './remote-vault.ts';
import { parseVaultKey } from './vault-key.ts';
import { openVault } from './vault.ts';

async function serveVault(home: string, certs: string, port: number) {
  return startMedlake(['vault', 'serve', '--certs', certs, '--port', String(port)], home);
}

describe('the vault on its own host (medlake vault serve)', () => {
  let scratch: string;
  let vaultHome: string;
  let certs: string;
  let vault: { child: ChildProcessWithoutNullStreams; url: string };
  let port: number;
  let platform: TestPlatform;
  let platformOpen = false;
  let firstPseudonym = '';
  let synthMrns = new Set<string>();
  const serverEnv = () => ({
    MEDLAKE_VAULT_URL: vault.url,
    MEDLAKE_VAULT_CA_PATH: clientFiles().ca,
    MEDLAKE_VAULT_CLIENT_CERT_PATH: clientFiles().cert,
    MEDLAKE_VAULT_CLIENT_KEY_PATH: clientFiles().key,
  });

  const clientFiles = () => ({
    ca: path.join(certs, 'ca.crt'),
    cert: path.join(certs, 'client.crt'),
    key: path.join(certs, 'client.key'),
  });

  beforeAll(async () => {
    scratch = await mkdtemp(path.join(tmpdir(), 'medlake-vault-service-'));
    vaultHome = path.join(scratch, 'vault-host');
    certs = path.join(scratch, 'certs');
    await runMedlake(['vault', 'certs', certs], vaultHome);
    vault = await serveVault(vaultHome, certs, 0);
    port = Number(new URL(vault.url).port);
    platform = await createTestPlatform('pglite', serverEnv());
    platformOpen = true;
    await prepareDataset(platform, 'synthea-observations');
  }, 180_000);

  afterAll(async () => {
    if (platformOpen) await platform.close();
    if (platform) {
      await rm(platform.env.MEDLAKE_HOME, { recursive: true, force: true });
      await rm(platform.env.MEDLAKE_AUDIT_CHECKPOINT_DIR, { recursive: true, force: true });
    }
    if (vault) await stopMedlake(vault.child);
    await rm(scratch, { recursive: true, force: true });
  });

  it('pseudonymizes an ingest through the service', async () => {
    const result = await ingest(platform, { file: synthea('2020-12'), month: '2020-12' });
    expect(result.status).toBe('published');
    if (result.status !== 'published') return;
    const release = await releasesRepository(platform.catalog.db).get(result.releaseId);
    const rows = await readParquetObjects(platform.store, release?.files ?? []);
    const pseudonyms = new Set(rows.map((row) => row.patient as string));
    const mrns = new Set(
      (parse(await readFile(synthea('2020-12')), { columns: true }) as Array<{ MRN: string }>).map(
        (row) => row.MRN,
      ),
    );
    expect(pseudonyms.size).toBe(mrns.size);

    expect(pseudonyms.size).toBeGreaterThan(0);
    firstPseudonym = [...pseudonyms][0] ?? '';
    synthMrns = mrns;
  });

  it('fails an ingest naming the vault service while it is down, publishes nothing, and succeeds once it is back', async () => {
    await stopMedlake(vault.child);
    await expect(ingest(platform, { file: synthea('2021-03'), month: '2021-03' })).rejects.toThrow(
      `Cannot reach the vault service at ${vault.url}`,
    );
    const releases = releasesRepository(platform.catalog.db);
    expect(await releases.current('synthea-observations', 'synthea', '2021-03')).toBeUndefined();
    const lake = await platform.store.list('lake/');
    expect(lake.some((key) => key.includes('2020-12'))).toBe(true);
    expect(lake.filter((key) => key.includes('2021-03'))).toEqual([]);

    vault = await serveVault(vaultHome, certs, port);
    const again = await ingest(platform, { file: synthea('2021-03'), month: '2021-03' });
    expect(again.status).toBe('published');
    expect((await releases.current('synthea-observations', 'synthea', '2021-03'))?.id).toBe(
      again.status === 'published' ? again.releaseId : undefined,
    );
  });

  it('refuses a client whose certificate another CA signed, or that has none', async () => {
    const strangers = path.join(scratch, 'other-certs');
    await runMedlake(['vault', 'certs', strangers], path.join(scratch, 'other-home'));
    const read = (file: string) => readFile(file, 'utf8');
    const own = clientFiles();
    const ca = await read(own.ca);
    const scope = { space: 'hospital:probe', kind: 'patient' };

    const rightful = remoteVaultClient({
      url: vault.url,
      ca,
      cert: await read(own.cert),
      key: await read(own.key),
    });
    const stranger = remoteVaultClient({
      url: vault.url,
      ca,
      cert: await read(path.join(strangers, 'client.crt')),
      key: await read(path.join(strangers, 'client.key')),
    });
    const anonymous = remoteVaultClient({ url: vault.url, ca, cert: '', key: '' });
    try {
      expect((await rightful.pseudonymize(scope, ['ID-1'])).get('ID-1')?.pseudonym).toMatch(/^p_/);
      await expect(stranger.pseudonymize(scope, ['ID-2'])).rejects.toThrow(
        /Cannot reach the vault service/,
      );
      await expect(anonymous.pseudonymize(scope, ['ID-3'])).rejects.toThrow(
        /Cannot reach the vault service/,
      );
    } finally {
      await Promise.all([rightful.close(), stranger.close(), anonymous.close()]);
    }
    // Neither refused request reached the vault.
    const vaultDb = new DatabaseSync(path.join(vaultHome, 'vault', 'vault.sqlite'), {
      readOnly: true,
    });
    const probed = vaultDb
      .prepare("SELECT count(*) AS n FROM identities WHERE space = 'hospital:probe'")
      .get() as { n: number };
    vaultDb.close();
    expect(probed.n).toBe(1);
  });

  it('re-identifies for the custodian through the service, audited by the vault and in the catalog', async () => {
    // The custodian's CLI on the server's home, as when the server is stopped: PGlite belongs
    // to one process at a time.
    await platform.close();
    platformOpen = false;
    const output = await runMedlake(
      [
        'vault',
        'reidentify',
        firstPseudonym,
        '--reason',
        'checking the vault service',
        '--custodian',
        'dr. vault test',
      ],
      platform.env.MEDLAKE_HOME,
      serverEnv(),
    );
    const realId = /is patient (\S+) of hospital:synthea/.exec(output)?.[1] ?? '';
    expect(synthMrns.has(realId)).toBe(true);

    // A project's own pseudonym of the same patient is traced back through the service's list.
    const projectPseudonym = (await openPrivacySecrets(platform.env)).pseudonymFor(
      'project:alpha',
      firstPseudonym,
    );
    const traced = await runMedlake(
      [
        'vault',
        'reidentify',
        projectPseudonym,
        '--holder',
        'project:alpha',
        '--reason',
        'checking a project pseudonym',
      ],
      platform.env.MEDLAKE_HOME,
      serverEnv(),
    );
    expect(traced).toContain(`is patient ${realId} of hospital:synthea`);

    // The vault's own log, on the vault host …
    const vaultDb = new DatabaseSync(path.join(vaultHome, 'vault', 'vault.sqlite'), {
      readOnly: true,
    });
    const logged = vaultDb
      .prepare('SELECT pseudonym, custodian, reason FROM reidentifications')
      .all();
    vaultDb.close();
    expect(logged).toEqual([
      {
        pseudonym: firstPseudonym,
        custodian: 'dr. vault test',
        reason: 'checking the vault service',
      },
      {
        pseudonym: firstPseudonym,
        custodian: expect.any(String) as string,
        reason: 'checking a project pseudonym',
      },
    ]);
    // … and the catalog's audit log, without the real id.
    const catalog = await openLockedCatalog(platform.env);
    try {
      const audited = await catalog.db
        .selectFrom('audit_log')
        .selectAll()
        .where('action', '=', 'reidentify')
        .execute();
      expect(audited).toHaveLength(2);
      expect(JSON.stringify(audited)).not.toContain(realId);
    } finally {
      await catalog.close();
    }
  });

  it('backs the vault up on its host while it serves, readable with its key', async () => {
    const backup = path.join(scratch, 'vault-backup');
    await runMedlake(['vault', 'backup', '--to', backup], vaultHome);
    const key = parseVaultKey(await readFile(path.join(backup, 'vault.key'), 'utf8'), 'backup');
    const copy = openVault(backup, key);
    try {
      const identity = copy.reidentify(firstPseudonym, {
        custodian: 'dr. vault test',
        reason: 'checking the backup',
      });
      expect(synthMrns.has(identity.realId)).toBe(true);
    } finally {
      copy.close();
    }
    await expect(runMedlake(['vault', 'backup', '--to', backup], vaultHome)).rejects.toThrow(
      /is not empty/,
    );
  });

  it('leaves no vault key and no mapping file on the server, after ingests and a re-identification', async () => {
    const vaultKey = (await readFile(path.join(vaultHome, 'keys', 'vault.key'), 'utf8')).trim();
    expect(vaultKey.length).toBeGreaterThan(0);
    const serverFiles = [
      ...(await listFiles(platform.env.MEDLAKE_HOME)),
      ...(await listFiles(platform.env.MEDLAKE_AUDIT_CHECKPOINT_DIR).catch(() => [])),
    ];
    expect(serverFiles.length).toBeGreaterThan(0);
    expect(
      serverFiles.filter((file) => /vault/i.test(path.relative(platform.env.MEDLAKE_HOME, file))),
    ).toEqual([]);
    const holdingTheKey: string[] = [];
    for (const file of serverFiles) {
      const bytes = await readFile(file).catch(() => Buffer.alloc(0));
      if (bytes.includes(vaultKey) || bytes.includes(Buffer.from(vaultKey, 'hex'))) {
        holdingTheKey.push(file);
      }
    }
    expect(holdingTheKey).toEqual([]);
  });
});
