import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { ConfigError, describeDatabaseUrl, loadEnv } from './env.ts';

function problemsOf(source: NodeJS.ProcessEnv): ConfigError['problems'] {
  try {
    loadEnv(source, '/srv');
  } catch (error) {
    if (error instanceof ConfigError) return error.problems;
    throw error;
  }
  throw new Error('expected a ConfigError');
}

describe('loadEnv', () => {
  it('gives the embedded default when nothing is set', () => {
    const env = loadEnv({}, '/srv/medlake');
    expect(env).toMatchObject({
      MEDLAKE_HOME: '/srv/medlake/.medlake',
      PORT: 8080,
      HOST: '127.0.0.1',
      MEDLAKE_ENGINE: 'duckdb',
      MEDLAKE_STORAGE: 'local',
    });
    expect(env.DATABASE_URL).toBeUndefined();
  });

  it('resolves MEDLAKE_HOME against the working directory and treats empty as unset', () => {
    expect(loadEnv({ MEDLAKE_HOME: 'data' }, '/srv').MEDLAKE_HOME).toBe('/srv/data');
    expect(loadEnv({ PORT: '' }, '/srv').PORT).toBe(8080);
  });

  it('keeps the audit checkpoints outside MEDLAKE_HOME', () => {
    expect(loadEnv({ MEDLAKE_HOME: 'data' }, '/srv').MEDLAKE_AUDIT_CHECKPOINT_DIR).toBe(
      '/srv/data-audit',
    );
    expect(
      loadEnv({ MEDLAKE_HOME: 'data', MEDLAKE_AUDIT_CHECKPOINT_DIR: '/mnt/audit' }, '/srv')
        .MEDLAKE_AUDIT_CHECKPOINT_DIR,
    ).toBe('/mnt/audit');
    for (const inside of ['data', 'data/keys/checkpoints']) {
      expect(problemsOf({ MEDLAKE_HOME: 'data', MEDLAKE_AUDIT_CHECKPOINT_DIR: inside })).toEqual([
        expect.objectContaining({ variable: 'MEDLAKE_AUDIT_CHECKPOINT_DIR' }),
      ]);
    }
  });

  it('names each bad variable without echoing its value', () => {
    const problems = problemsOf({ PORT: 'eighty', DATABASE_URL: 'mysql://secret@db/x' });
    expect(problems.map((problem) => problem.variable).sort()).toEqual(['DATABASE_URL', 'PORT']);
    expect(JSON.stringify(problems)).not.toContain('secret');
    expect(JSON.stringify(problems)).not.toContain('eighty');
  });

  it('rejects ports out of range and unknown engines', () => {
    expect(problemsOf({ PORT: '70000' })[0]?.variable).toBe('PORT');
    expect(problemsOf({ MEDLAKE_ENGINE: 'oracle' })[0]?.variable).toBe('MEDLAKE_ENGINE');
  });

  it('reads secrets from NAME_FILE', async () => {
    const directory = await mkdtemp(path.join(tmpdir(), 'medlake-env-'));
    try {
      await writeFile(path.join(directory, 'db-url'), 'postgres://u:p@db:5432/medlake\n');
      const env = loadEnv({ DATABASE_URL_FILE: 'db-url' }, directory);
      expect(env.DATABASE_URL).toBe('postgres://u:p@db:5432/medlake');
    } finally {
      await rm(directory, { recursive: true, force: true });
    }
  });

  it('refuses NAME and NAME_FILE together, and a NAME_FILE it cannot read', () => {
    expect(problemsOf({ DATABASE_URL: 'postgres://db/x', DATABASE_URL_FILE: '/x' })).toEqual([
      { variable: 'DATABASE_URL', message: 'set DATABASE_URL or DATABASE_URL_FILE, not both' },
    ]);
    expect(problemsOf({ DATABASE_URL_FILE: '/no/such/file' })).toEqual([
      { variable: 'DATABASE_URL_FILE', message: 'cannot read /no/such/file (ENOENT)' },
    ]);
  });

  it('writes every problem into the error message, one per line', () => {
    expect(() => loadEnv({ PORT: 'x', LOG_LEVEL: 'loud' })).toThrow(/PORT: .*\n {2}LOG_LEVEL: /);
  });
});

describe('describeDatabaseUrl', () => {
  it('keeps host, port and database and drops the credentials', () => {
    expect(describeDatabaseUrl('postgresql://admin:hunter2@db.internal:6543/catalog')).toBe(
      'postgres://db.internal:6543/catalog',
    );
  });
});
