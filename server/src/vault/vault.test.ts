import { randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { parseVaultKey, resolveVaultKey } from './vault-key.ts';
import { openVault, vaultExists } from './vault.ts';

describe('vault', () => {
  let directory: string;
  const key = randomBytes(32);
  const patients = { space: 'hospital:h1', kind: 'patient' };

  beforeEach(async () => {
    directory = await mkdtemp(path.join(tmpdir(), 'medlake-vault-'));
  });

  afterEach(async () => {
    await rm(directory, { recursive: true, force: true });
  });

  it('gives an id the same random pseudonym and date shift every time, even after reopening', () => {
    const vault = openVault(directory, key);
    const first = vault.pseudonymize(patients, ['MRN-1', 'MRN-2', 'MRN-1']);
    vault.close();
    expect(first.size).toBe(2);
    const [one, two] = [first.get('MRN-1'), first.get('MRN-2')];
    expect(one?.pseudonym).toMatch(/^p_[0-9a-f]{20}$/);
    expect(one?.pseudonym).not.toBe(two?.pseudonym);
    expect(Math.abs(one?.shiftDays ?? 0)).toBeGreaterThan(0);

    const reopened = openVault(directory, key);
    expect(reopened.pseudonymize(patients, ['MRN-1']).get('MRN-1')).toEqual(one);
    reopened.close();
  });

  it('gives the same id at two hospitals two pseudonyms', () => {
    const vault = openVault(directory, key);
    const atOne = vault.pseudonymize(patients, ['MRN-1']).get('MRN-1');
    const atTwo = vault
      .pseudonymize({ space: 'hospital:h2', kind: 'patient' }, ['MRN-1'])
      .get('MRN-1');
    vault.close();
    expect(atOne?.pseudonym).not.toBe(atTwo?.pseudonym);
  });

  it('maps a pseudonym back for the custodian and records the request', () => {
    const vault = openVault(directory, key);
    const pseudonym = vault.pseudonymize(patients, ['MRN-42']).get('MRN-42')?.pseudonym ?? '';
    expect(
      vault.reidentify(pseudonym, { custodian: 'dr. who', reason: 'incidental finding' }),
    ).toMatchObject({
      ...patients,
      realId: 'MRN-42',
    });
    expect(() =>
      vault.reidentify('p_nothing', { custodian: 'x', reason: 'testing a miss' }),
    ).toThrow(/No identity/);
    vault.close();
  });

  it('records where a re-identification came from, also in a vault made before it did', () => {
    openVault(directory, key).close();
    const older = new DatabaseSync(path.join(directory, 'vault.sqlite'));
    older.exec('ALTER TABLE reidentifications DROP COLUMN source');
    older.close();
    const vault = openVault(directory, key);
    const pseudonym = vault.pseudonymize(patients, ['MRN-43']).get('MRN-43')?.pseudonym ?? '';
    vault.reidentify(pseudonym, { custodian: 'dr. who', reason: 'a finding', source: 'cli:a@h' });
    vault.close();
    const db = new DatabaseSync(path.join(directory, 'vault.sqlite'), { readOnly: true });
    expect(db.prepare('SELECT source FROM reidentifications').all()).toEqual([
      { source: 'cli:a@h' },
    ]);
    db.close();
  });

  it('maps every pseudonym of a large batch back to its own id', () => {
    const vault = openVault(directory, key);
    const ids = Array.from({ length: 2000 }, (_, n) => `MRN-${n}`);
    const entries = vault.pseudonymize(patients, ids);
    const request = { custodian: 'dr. who', reason: 'checking a batch' };
    const wrong = ids.filter(
      (id) => vault.reidentify(entries.get(id)?.pseudonym ?? '', request).realId !== id,
    );
    vault.close();
    expect(wrong).toEqual([]);
  });

  it('keeps no real id in the clear on disk', async () => {
    const vault = openVault(directory, key);
    vault.pseudonymize(patients, ['UNMISTAKABLE-ID-7731']);
    vault.close();
    const bytes = Buffer.concat(
      await Promise.all(
        ['vault.sqlite', 'vault.sqlite-wal'].map((file) =>
          readFile(path.join(directory, file)).catch(() => Buffer.alloc(0)),
        ),
      ),
    );
    expect(bytes.length).toBeGreaterThan(0);
    expect(bytes.includes('UNMISTAKABLE-ID-7731')).toBe(false);
  });

  it('keeps its file and its copies readable by their owner alone', async () => {
    const vault = openVault(directory, key);
    vault.pseudonymize(patients, ['MRN-1']);
    const copy = path.join(directory, 'copy.sqlite');
    vault.copyTo(copy);
    try {
      // Each holds every pseudonym's date shift in the clear; the WAL only while it is open.
      for (const file of ['vault.sqlite', 'vault.sqlite-wal', 'copy.sqlite']) {
        expect((await stat(path.join(directory, file))).mode & 0o777).toBe(0o600);
      }
    } finally {
      vault.close();
    }
  });

  it('refuses a different key instead of starting a second mapping', () => {
    openVault(directory, key).close();
    expect(() => openVault(directory, randomBytes(32))).toThrow(/does not match/);
  });

  it('generates a key for a new vault, and refuses to when a vault exists without one', async () => {
    const keyFile = path.join(directory, 'keys', 'vault.key');
    const generated = await resolveVaultKey({
      configuredKey: undefined,
      generatedKeyFile: keyFile,
      vaultExists: false,
    });
    expect(generated).toHaveLength(32);
    expect(
      await resolveVaultKey({
        configuredKey: undefined,
        generatedKeyFile: keyFile,
        vaultExists: true,
      }),
    ).toEqual(generated);

    await rm(keyFile);
    await expect(
      resolveVaultKey({ configuredKey: undefined, generatedKeyFile: keyFile, vaultExists: true }),
    ).rejects.toThrow(/key is missing/);
  });

  it('reads keys as hex or base64 and rejects other lengths', async () => {
    const hex = key.toString('hex');
    expect(parseVaultKey(hex, 'x')).toEqual(key);
    expect(parseVaultKey(key.toString('base64'), 'x')).toEqual(key);
    expect(() => parseVaultKey('abc', 'MEDLAKE_VAULT_KEY')).toThrow(/32-byte key/);
    const keyFile = path.join(directory, 'configured.key');
    await writeFile(keyFile, hex);
    expect(vaultExists(directory)).toBe(false);
  });
});
