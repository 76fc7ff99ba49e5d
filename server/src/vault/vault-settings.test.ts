import { describe, expect, it } from 'vitest';
import { ConfigError, loadEnv } from '../env.ts';

describe('the vault service settings', () => {
  const service = {
    MEDLAKE_VAULT_URL: 'https://vault.internal:8443',
    MEDLAKE_VAULT_CA_PATH: '/etc/medlake/ca.crt',
    MEDLAKE_VAULT_CLIENT_CERT_PATH: '/etc/medlake/client.crt',
    MEDLAKE_VAULT_CLIENT_KEY_PATH: '/etc/medlake/client.key',
  };

  const problemsOf = (source: Record<string, string>) => {
    try {
      loadEnv({ MEDLAKE_HOME: '/tmp/medlake-settings-test', ...source });
      return [];
    } catch (error) {
      if (!(error instanceof ConfigError)) throw error;
      return error.problems.map((problem) => problem.variable);
    }
  };

  it('accepts an https address with its three certificate files', () => {
    expect(problemsOf(service)).toEqual([]);
  });

  it('names each missing certificate file', () => {
    expect(problemsOf({ MEDLAKE_VAULT_URL: service.MEDLAKE_VAULT_URL })).toEqual([
      'MEDLAKE_VAULT_CA_PATH',
      'MEDLAKE_VAULT_CLIENT_CERT_PATH',
      'MEDLAKE_VAULT_CLIENT_KEY_PATH',
    ]);
  });

  it('refuses the vault key beside a vault service, and a plain-http address', () => {
    expect(problemsOf({ ...service, MEDLAKE_VAULT_KEY: 'ab'.repeat(32) })).toEqual([
      'MEDLAKE_VAULT_KEY',
    ]);
    expect(problemsOf({ ...service, MEDLAKE_VAULT_URL: 'http://vault.internal:8443' })).toEqual([
      'MEDLAKE_VAULT_URL',
    ]);
  });
});
