import { execFile, spawn } from 'node:child_process';
import { once } from 'node:events';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { largeDataset, startDemoServer, type DemoServer } from '../../test/demo-server.ts';

const repositoryRoot = fileURLToPath(new URL('../../..', import.meta.url));
const clientRoot = path.join(repositoryRoot, 'clients/python');

/**
 * The Python client (clients/python) tested as researchers use it: built as a wheel and
 * installed into a venv from PyPI (scripts/python-client-venv.sh), its pytest suite run
 * against a real `medlake serve` on the demo data, with the example notebook executed.
 */
describe('the Python client', () => {
  let python: string;
  let server: DemoServer;

  beforeAll(async () => {
    const [venv, started] = await Promise.all([
      promisify(execFile)('bash', [path.join(repositoryRoot, 'scripts/python-client-venv.sh')], {
        cwd: repositoryRoot,
        maxBuffer: 16 * 1024 * 1024,
      }),
      startDemoServer(),
    ]);
    python = venv.stdout.trim();
    server = started;
  }, 900_000);

  afterAll(async () => {
    await server?.close();
  });

  it('passes its pytest suite against medlake serve on the demo data', async () => {
    const pytest = spawn(
      python,
      ['-m', 'pytest', '-ra', '--color=no', '-p', 'no:cacheprovider', 'tests'],
      {
        cwd: clientRoot,
        env: {
          PATH: process.env.PATH ?? '',
          HOME: process.env.HOME ?? '',
          MEDLAKE_TEST_URL: server.url,
          MEDLAKE_TEST_TOKEN_AGGREGATE: server.tokens.aggregate,
          MEDLAKE_TEST_TOKEN_SECOND: server.tokens.second,
          MEDLAKE_TEST_TOKEN_NOTEBOOK: server.tokens.notebook,
          MEDLAKE_TEST_TOKEN_ROW: server.tokens.row,
          MEDLAKE_TEST_TOKEN_EXPIRED: server.tokens.expired,
          MEDLAKE_TEST_LARGE_DATASET: largeDataset,
          // For the spec models' test: `medlake query --schema` on this Node.js.
          MEDLAKE_TEST_CLI: `${process.execPath} ${path.join(repositoryRoot, 'server/bin/medlake.js')}`,
        },
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    let output = '';
    pytest.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
    pytest.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
    const [code] = (await once(pytest, 'exit')) as [number | null];
    const failure = `pytest exited with ${code}:\n${output}\n--- medlake serve printed:\n${server.output().slice(-4000)}`;
    expect(code, failure).toBe(0);
    // pytest's closing line: every test ran and passed, none skipped or expected to fail.
    const closing = output.trim().split('\n').at(-1) ?? '';
    expect(closing, output).toMatch(/^=+ \d+ passed(, \d+ warnings?)? in /);
  }, 900_000);
});
