import { spawn } from 'node:child_process';
import { mkdir, mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { contractFile, listFiles, repositoryRoot } from '../../test/ingest-helpers.ts';
import { exitAndOutput } from '../../test/medlake-process.ts';
import { publishedObjects } from '../../test/published-objects.ts';
import { jobsRepository } from '../catalog/jobs-repository.ts';
import { releasesRepository } from '../catalog/releases-repository.ts';
import { generateExports, type GeneratedExport } from '../demo/generate-exports.ts';
import { loadEnv } from '../env.ts';
import { openPlatform } from '../platform.ts';
import { ingestJobKind } from '../use-cases/ingest-upload.ts';

const bin = path.join(repositoryRoot, 'server/bin/medlake.js');

/**
 * Runs the CLI; with `fullFolder`, inside a mount namespace of its own where that folder is a
 * tmpfs of 512 KiB, so that writing there fills the disk. `unshare` maps the caller to root in
 * a new user namespace, so this needs no privilege, and the mount vanishes with the process.
 */
async function medlake(home: string, args: string[], fullFolder?: string) {
  const command = fullFolder
    ? [
        'unshare',
        '--user',
        '--map-root-user',
        '--mount',
        'sh',
        '-c',
        'mount -t tmpfs -o size=512k tmpfs "$0" && shift && exec "$@"',
        fullFolder,
        '--',
        process.execPath,
        bin,
        ...args,
      ]
    : [process.execPath, bin, ...args];
  const child = spawn(command[0]!, command.slice(1), {
    cwd: repositoryRoot,
    env: { PATH: process.env.PATH ?? '', MEDLAKE_HOME: home, LOG_LEVEL: 'warn' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  return exitAndOutput(child);
}

/** A full disk while the ingest writes the release's Parquet into the lake. */
describe('a full disk while Parquet is written', () => {
  let home: string;
  let exports: GeneratedExport[];

  beforeAll(async () => {
    home = await mkdtemp(path.join(tmpdir(), 'medlake-disk-full-'));
    // Two months of 60,000 rows: each month's Parquet is several MiB, far above the tmpfs.
    exports = await generateExports({
      hospitals: 1,
      months: 2,
      rows: 60_000,
      outDir: path.join(home, 'exports'),
    });
    await medlake(path.join(home, 'home'), ['hospitals', 'add', 'h01', '--name', 'Hospital 1']);
    await medlake(path.join(home, 'home'), [
      'datasets',
      'create',
      '--contract',
      contractFile('lab-results'),
    ]);
    const first = await medlake(path.join(home, 'home'), [
      'ingest',
      exports[0]!.file,
      '-d',
      'lab-results',
      '-H',
      'h01',
      '-m',
      exports[0]!.month,
    ]);
    expect(first.code, first.output).toBe(0);
  }, 300_000);

  afterAll(async () => {
    await rm(home, { recursive: true, force: true });
  });

  it('fails the ingest with a plain message, publishes nothing, leaves nothing behind, and the same upload succeeds once there is space', async () => {
    const medlakeHome = path.join(home, 'home');
    const upload = exports[1]!;
    const monthFolder = path.join(
      medlakeHome,
      'objects/lake/lab-results/hospital=h01',
      `month=${upload.month}`,
    );
    await mkdir(monthFolder, { recursive: true });
    const ingestArgs = [
      'ingest',
      upload.file,
      '-d',
      'lab-results',
      '-H',
      'h01',
      '-m',
      upload.month,
    ];

    const full = await medlake(medlakeHome, ingestArgs, monthFolder);
    expect(full.code, full.output).toBe(1);
    expect(full.output).toMatch(
      /medlake: the server's disk is full: the upload could not be written/,
    );
    // The engine's own message names files; it is not passed on.
    expect(full.output).not.toMatch(/parquet|IO Error/i);

    const platform = await openPlatform(
      loadEnv({ MEDLAKE_HOME: medlakeHome, LOG_LEVEL: 'silent' }),
    );
    try {
      const releases = await releasesRepository(platform.catalog.db).list();
      expect(releases.map((release) => release.month)).toEqual([exports[0]!.month]);
      expect((await platform.store.list('lake/')).sort()).toEqual(
        await publishedObjects(platform.catalog.db, releases),
      );
      const jobs = await jobsRepository(platform.catalog.db).list(ingestJobKind, null, {
        page: 1,
        pageSize: 10,
      });
      expect(jobs.jobs.find((job) => job.status === 'failed')?.error).toEqual({
        message: expect.stringMatching(/^the server's disk is full/),
      });
    } finally {
      await platform.close();
    }
    expect(await readdir(path.join(medlakeHome, 'work'))).toEqual([]);
    expect(await listFiles(path.join(medlakeHome, 'objects/landing'))).toEqual([]);

    const retried = await medlake(medlakeHome, ingestArgs);
    expect(retried.code, retried.output).toBe(0);
    expect(retried.output).toMatch(/Published release/);
  }, 300_000);
});
