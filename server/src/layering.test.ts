import path from 'node:path';
import { ESLint } from 'eslint';
import { beforeAll, describe, expect, it } from 'vitest';

// The layer rules of eslint.config.js, run through ESLint's own API on files that do not exist:
// lintText lints the text as if it lived at the path given, with the rules of that path.
const repository = path.resolve(import.meta.dirname, '../..');

let eslint: ESLint;
beforeAll(() => {
  eslint = new ESLint({ cwd: repository });
});

/** The messages of the import rules for this text, as if it were the file at `file`. */
async function importProblems(file: string, text: string): Promise<string[]> {
  const [result] = await eslint.lintText(text, { filePath: path.join(repository, file) });
  return (result?.messages ?? [])
    .filter((message) => message.ruleId?.endsWith('no-restricted-imports'))
    .map((message) => message.message);
}

const callsTheJobRunner = [
  "import { runQueryJob } from '../use-cases/queries/run-query-job.ts';",
  'export const run = runQueryJob;',
  '',
].join('\n');

describe('layers only call downward', () => {
  it('refuses an import of a use-case from the query core, and takes it in use-cases/', async () => {
    const problems = await importProblems('server/src/query/x.ts', callsTheJobRunner);
    expect(problems).toHaveLength(1);
    expect(problems[0]).toContain('The core never calls upward');
    expect(await importProblems('server/src/use-cases/x.ts', callsTheJobRunner)).toEqual([]);
  });

  it('refuses imports of routes, HTTP and the CLI from every folder below the use-cases', async () => {
    const folders = ['query', 'ingest', 'privacy', 'engines', 'demo', 'audit', 'accounts'];
    folders.push('downloads', 'storage', 'catalog', 'vault');
    for (const folder of folders) {
      const text = [
        "import { adminRoutes } from '../routes/admin/admin-routes.ts';",
        "import { requireCaller } from '../http/authenticate.ts';",
        "import { serveCommand } from '../cli/serve.ts';",
        'export const all = [adminRoutes, requireCaller, serveCommand];',
        '',
      ].join('\n');
      expect(await importProblems(`server/src/${folder}/x.ts`, text), folder).toHaveLength(3);
    }
  });

  it('refuses an upward import from the files below the use-cases in server/src itself', async () => {
    const reachingUp = [
      "import { uploadRoutes } from './routes/uploads/upload-routes.ts';",
      "import { runQueryJob } from './use-cases/queries/run-query-job.ts';",
      'export const all = [uploadRoutes, runQueryJob];',
      '',
    ].join('\n');
    for (const file of ['policy.ts', 'error-handler.ts', 'errors.ts', 'platform-parts.ts']) {
      expect(await importProblems(`server/src/${file}`, reachingUp), file).toHaveLength(2);
    }
    // The entry points are above everything and may import it all.
    expect(await importProblems('server/src/app.ts', reachingUp)).toEqual([]);
  });

  it('refuses platform.ts in the core, even for its type, and takes PlatformParts', async () => {
    const withPlatform = [
      "import type { Platform } from '../platform.ts';",
      'export type Parts = Platform;',
      '',
    ].join('\n');
    const [problem] = await importProblems('server/src/privacy/x.ts', withPlatform);
    expect(problem).toContain('PlatformParts');
    const withParts = [
      "import type { PlatformParts } from '../platform-parts.ts';",
      'export type Parts = PlatformParts;',
      '',
    ].join('\n');
    expect(await importProblems('server/src/privacy/x.ts', withParts)).toEqual([]);
  });

  it('lets a test of the core build a whole platform', async () => {
    const text = [
      "import { openPlatform } from '../platform.ts';",
      'export const open = openPlatform;',
      '',
    ].join('\n');
    expect(await importProblems('server/src/query/x.test.ts', text)).toEqual([]);
  });

  it('refuses a repository in a route, but lets a presenter name its row type', async () => {
    const reading = [
      "import { usersRepository } from '../../catalog/users-repository.ts';",
      'export const users = usersRepository;',
      '',
    ].join('\n');
    const [problem] = await importProblems('server/src/routes/admin/x.ts', reading);
    expect(problem).toContain('never a repository');
    const naming = [
      "import type { User } from '../../catalog/users-repository.ts';",
      'export type Shown = Pick<User, "email">;',
      '',
    ].join('\n');
    expect(await importProblems('server/src/routes/admin/x.ts', naming)).toEqual([]);
  });
});
