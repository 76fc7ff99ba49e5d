import { execFileSync } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { openCatalog } from '../src/catalog/catalog.ts';

const repositoryRoot = fileURLToPath(new URL('../..', import.meta.url));

/**
 * Once per test run: build the web app (the browser tests must see the current one, not an
 * older build), and make one empty PGlite database that tests copy instead of running initdb
 * each time.
 */
export default async function setup(): Promise<() => Promise<void>> {
  execFileSync('npm', ['run', 'build'], { cwd: repositoryRoot, stdio: 'inherit' });
  const directory = await mkdtemp(path.join(tmpdir(), 'medlake-pglite-template-'));
  const template = path.join(directory, 'catalog');
  await (await openCatalog({ directory: template })).close();
  // Test workers start after this and inherit the environment.
  process.env.MEDLAKE_TEST_PGLITE_TEMPLATE = template;
  return () => rm(directory, { recursive: true, force: true });
}
