import { randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { request } from 'node:https';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startVaultService, type TestVaultService } from '../../test/vault-service.ts';
import { makeVaultCertificates, vaultCertificateFiles } from './vault-certificates.ts';
import { remoteVaultClient } from './remote-vault.ts';
import { maxBatchIds } from './vault-service.ts';
import { openVault, type Vault } from './vault.ts';

/**
 * What a client holding the certificate (a medlake server, honest or not) cannot make the
 * vault service do: hold its memory with one huge batch, or re-identify with an empty reason.
 */
describe('the vault service refuses oversized batches and empty reasons', () => {
  let scratch: string;
  let vault: Vault;
  let app: TestVaultService;
  let client: { ca: string; cert: string; key: string };
  let port: number;
  const logLines: string[] = [];

  beforeAll(async () => {
    scratch = await mkdtemp(path.join(tmpdir(), 'medlake-vault-limits-'));
    const certs = path.join(scratch, 'certs');
    await makeVaultCertificates(certs, { hosts: [] });
    const read = (name: string) => readFile(path.join(certs, name), 'utf8');
    vault = openVault(path.join(scratch, 'vault'), randomBytes(32));
    ({ service: app, port } = await startVaultService(vault, certs, logLines));
    client = {
      ca: await read(vaultCertificateFiles.caCert),
      cert: await read(vaultCertificateFiles.clientCert),
      key: await read(vaultCertificateFiles.clientKey),
    };
  }, 60_000);

  afterAll(async () => {
    await app?.close();
    vault?.close();
    await rm(scratch, { recursive: true, force: true });
  });

  const post = (route: string, body: unknown) =>
    new Promise<{ status: number; body: string }>((resolve, reject) => {
      const payload = JSON.stringify(body);
      const outgoing = request(
        `https://localhost:${port}${route}`,
        { method: 'POST', ...client, headers: { 'content-type': 'application/json' } },
        (incoming) => {
          const chunks: Buffer[] = [];
          incoming.on('data', (chunk: Buffer) => chunks.push(chunk));
          incoming.on('end', () =>
            resolve({ status: incoming.statusCode ?? 0, body: Buffer.concat(chunks).toString() }),
          );
        },
      );
      // The service may answer 413 and close before the whole body is sent.
      outgoing.on('error', reject);
      outgoing.end(payload);
    });

  const patientCount = () => {
    let count = 0;
    vault.findPatientPseudonym(() => {
      count += 1;
      return false;
    });
    return count;
  };

  it('accepts a batch the size ingest sends', async () => {
    const ids = Array.from({ length: 50_000 }, (_, n) => `MRN-${String(n).padStart(60, '0')}`);
    const answer = await post('/v1/pseudonyms', { space: 'h1', kind: 'patient', ids });
    expect(answer.status).toBe(200);
    expect((JSON.parse(answer.body) as { entries: unknown[] }).entries).toHaveLength(50_000);
  }, 60_000);

  it('refuses a batch of more ids than the limit, and keeps none of them', async () => {
    const before = patientCount();
    const ids = Array.from({ length: maxBatchIds + 1 }, (_, n) => `X${n}`);
    const answer = await post('/v1/pseudonyms', { space: 'h2', kind: 'patient', ids });
    expect(answer.status).toBe(400);
    expect(patientCount()).toBe(before);
  }, 60_000);

  it('refuses a body over 16 MiB before reading it into the vault', async () => {
    const before = patientCount();
    const ids = Array.from({ length: 90_000 }, (_, n) => `${'y'.repeat(200)}${n}`);
    const answer = await post('/v1/pseudonyms', { space: 'h3', kind: 'patient', ids });
    expect(answer.status).toBe(413);
    expect(patientCount()).toBe(before);
  }, 60_000);

  it('refuses a re-identification whose reason or custodian is only spaces', async () => {
    const [pseudonym] = [
      ...vault.pseudonymize({ space: 'h1', kind: 'patient' }, ['MRN-9']).values(),
    ];
    const blankReason = await post('/v1/reidentifications', {
      pseudonym: pseudonym?.pseudonym,
      custodian: 'dr. who',
      reason: '      ',
    });
    expect(blankReason.status).toBe(400);
    expect(blankReason.body).not.toContain('MRN-9');
    const blankCustodian = await post('/v1/reidentifications', {
      pseudonym: pseudonym?.pseudonym,
      custodian: '   ',
      reason: 'checking a lab value with the ward',
    });
    expect(blankCustodian.status).toBe(400);
    expect(blankCustodian.body).not.toContain('MRN-9');
  });

  it('logs where a re-identification came from on the server side, never the real id', async () => {
    const [entry] = [...vault.pseudonymize({ space: 'h1', kind: 'patient' }, ['MRN-77']).values()];
    const remote = remoteVaultClient({ url: `https://localhost:${port}`, ...client });
    try {
      const identity = await remote.reidentify(entry?.pseudonym ?? '', {
        custodian: 'dr. who',
        reason: 'checking a lab value with the ward',
        source: 'cli:alice@server-2',
      });
      expect(identity.realId).toBe('MRN-77');
    } finally {
      await remote.close();
    }
    const logged = logLines.filter((line) => line.includes('re-identification requested'));
    expect(logged.at(-1)).toContain('cli:alice@server-2');
    expect(logLines.join('\n')).not.toContain('MRN-77');
    // The vault's own table records it too, with the client certificate that asked.
    const db = new DatabaseSync(path.join(scratch, 'vault', 'vault.sqlite'), { readOnly: true });
    const [recorded] = db
      .prepare('SELECT source FROM reidentifications WHERE pseudonym = ?')
      .all(entry?.pseudonym ?? '') as Array<{ source: string }>;
    db.close();
    expect(recorded?.source).toBe('certificate medlake server, cli:alice@server-2');
  });
});
