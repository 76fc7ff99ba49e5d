import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const repositoryRoot = fileURLToPath(new URL('../..', import.meta.url));

/** The end-to-end tests serve the built web app, so build it once if no build is there. */
export default function setup(): void {
  if (existsSync(`${repositoryRoot}/web/dist/index.html`)) return;
  execFileSync('npm', ['run', 'build'], { cwd: repositoryRoot, stdio: 'inherit' });
}
