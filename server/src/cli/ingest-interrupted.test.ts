import { once } from 'node:events';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { contractFile, listFiles } from '../../test/ingest-helpers.ts';
import { medlake, runMedlake } from '../../test/medlake-process.ts';
import { publishedObjects } from '../../test/published-objects.ts';
import { jobsRepository } from '../catalog/jobs-repository.ts';
import { releasesRepository } from '../catalog/releases-repository.ts';
import { generateExports } from '../demo/generate-exports.ts';
import { loadEnv } from '../env.ts';
import { openPlatform } from '../platform.ts';

describe('an ingest killed with SIGKILL', () => {
  let home: string;
  let exports: string;

  beforeAll(async () => {
    home = await mkdtemp(path.join(tmpdir(), 'medlake-kill-'));
    exports = path.join(home, '..', `${path.basename(home)}-exports`);
    const [small, large] = await generateExports({
      hospitals: 1,
      months: 2,
      rows: 2000,
      outDir: exports,
    });
    // A second month file made big enough to be still reading when it is killed.
    const big = await generateExports({
      hospitals: 1,
      months: 1,
      rows: 400_000,
      outDir: path.join(exports, 'big'),
      firstMonth: '2024-01',
    });
    await runMedlake(['hospitals', 'add', 'h01', '--name', 'Hospital 1'], home);
    await runMedlake(['datasets', 'create', '--contract', contractFile('lab-results')], home);
    await runMedlake(
      ['ingest', small?.file ?? '', '-d', 'lab-results', '-H', 'h01', '-m', '2024-01'],
      home,
    );
    expect(large).toBeDefined();

    const child = medlake(
      ['ingest', big[0]?.file ?? '', '-d', 'lab-results', '-H', 'h01', '-m', '2024-01'],
      home,
    );
    await new Promise<void>((resolve, reject) => {
      let printed = '';
      child.stderr.on('data', (chunk: Buffer) => {
        printed += chunk.toString();
        if (/^reading/m.test(printed)) resolve();
      });
      child.once('exit', () =>
        reject(new Error(`finished before it could be killed:\n${printed}`)),
      );
    });
    child.kill('SIGKILL');
    await once(child, 'exit');
  });

  afterAll(async () => {
    await rm(home, { recursive: true, force: true });
    await rm(exports, { recursive: true, force: true });
  });

  it('leaves its job running and its files behind until the next start', async () => {
    expect(await readdir(path.join(home, 'work'))).toHaveLength(1);
    expect((await listFiles(path.join(home, 'objects', 'landing'))).length).toBe(1);
  });

  it('is cleaned up by the next process: job failed, files gone, the previous release still current', async () => {
    await runMedlake(['releases', 'list'], home);
    const platform = await openPlatform(loadEnv({ MEDLAKE_HOME: home }));
    try {
      const releases = await releasesRepository(platform.catalog.db).list();
      expect(releases).toHaveLength(1);
      expect(releases[0]?.current).toBe(true);
      expect(await jobsRepository(platform.catalog.db).listRunning('ingest')).toEqual([]);
      const lake = await platform.store.list('lake/');
      expect(lake).toEqual(await publishedObjects(platform.catalog.db, releases));
    } finally {
      await platform.close();
    }
    expect(await readdir(path.join(home, 'work'))).toEqual([]);
    expect(await listFiles(path.join(home, 'objects', 'landing'))).toEqual([]);
    expect(await readFile(path.join(home, 'keys', 'vault.key'), 'utf8')).toMatch(
      /^[0-9a-f]{64}\n$/,
    );
  });
});
