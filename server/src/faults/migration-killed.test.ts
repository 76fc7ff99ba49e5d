import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { repositoryRoot } from '../../test/ingest-helpers.ts';
import { migrations } from '../catalog/migrations/index.ts';

const bin = path.join(repositoryRoot, 'server/bin/medlake.js');

/** Runs the CLI; with `killAfter`, sends SIGKILL as soon as its output matches. */
async function medlake(home: string, args: string[], killAfter?: RegExp) {
  const child = spawn(process.execPath, [bin, ...args], {
    cwd: repositoryRoot,
    env: { PATH: process.env.PATH ?? '', MEDLAKE_HOME: home, LOG_LEVEL: 'warn' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  const onData = (chunk: Buffer) => {
    output += chunk.toString();
    if (killAfter?.test(output)) child.kill('SIGKILL');
  };
  child.stdout.on('data', onData);
  child.stderr.on('data', onData);
  const [code, signal] = (await once(child, 'exit')) as [number | null, string | null];
  return { code, signal, output };
}

/**
 * A catalog migration killed part way (SIGKILL as soon as the third migration begins): the
 * pending migrations run in one transaction, so the catalog holds all of them or none, and the
 * next start applies what is missing and works.
 */
describe('a catalog migration killed part way', () => {
  let home: string;

  beforeAll(async () => {
    home = await mkdtemp(path.join(tmpdir(), 'medlake-migration-killed-'));
  });

  afterAll(async () => {
    await rm(home, { recursive: true, force: true });
  });

  it('is completed by the next start, and the catalog works', async () => {
    const names = Object.keys(migrations);
    const killed = await medlake(home, ['db', 'migrate'], new RegExp(`applying ${names[2]}`));
    expect(killed.signal).toBe('SIGKILL');
    expect(killed.output).not.toContain('applied');

    const between = await medlake(home, ['db', 'status']);
    expect(between.code, between.output).toBe(0);
    const appliedBetween = names.filter((name) => between.output.includes(`${name}  applied`));
    expect([0, names.length]).toContain(appliedBetween.length);

    const again = await medlake(home, ['db', 'migrate']);
    expect(again.code, again.output).toBe(0);
    const status = await medlake(home, ['db', 'status']);
    expect(status.code, status.output).toBe(0);
    for (const name of names) expect(status.output).toContain(`${name}  applied`);
    const hospital = await medlake(home, ['hospitals', 'add', 'h1', '--name', 'Hospital 1']);
    expect(hospital.code, hospital.output).toBe(0);
    const listed = await medlake(home, ['hospitals', 'list']);
    expect(listed.output).toContain('h1');
  });
});
