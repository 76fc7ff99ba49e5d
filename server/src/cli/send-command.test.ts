import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { partRange, type UploadSessionView } from '@medlake/shared';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { prepareDataset, synthea, stewardWithToken } from '../../test/ingest-helpers.ts';
import { startWebServer, type WebServer } from '../../test/web-server.ts';

const bin = fileURLToPath(new URL('../../bin/medlake.js', import.meta.url));
const mebibyte = 1024 * 1024;

/** Runs `medlake send` in a child process, as a steward would on the hospital's machine. */
async function send(args: string[], token: string) {
  const child = spawn(process.execPath, [bin, 'send', ...args], {
    env: { PATH: process.env.PATH ?? '', MEDLAKE_API_TOKEN: token },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const [code] = (await once(child, 'exit')) as [number | null];
  return { code, stdout, stderr };
}

describe('medlake send, to a server on S3', () => {
  let server: WebServer;
  let scratch: string;
  let file: string;
  let token: string;

  beforeAll(async () => {
    server = await startWebServer({}, { storage: 's3' });
    await prepareDataset(server.platform, 'synthea-observations');
    token = await stewardWithToken(server.platform, 'steward@example.org', 'synthea');
    scratch = await mkdtemp(path.join(tmpdir(), 'medlake-send-'));
    // The full export twice over: about 12 MB, three parts of 5 MiB.
    const [header, ...rows] = (await readFile(synthea('all'), 'utf8')).trimEnd().split('\n');
    file = path.join(scratch, 'hospital-export.csv');
    await writeFile(file, [header, ...rows, ...rows].join('\n'));
  });

  afterAll(async () => {
    await server?.close();
    await rm(scratch, { recursive: true, force: true });
  });

  it('goes on with the parts an earlier run did not send, and the file is published', async () => {
    // An earlier run started the upload and sent part 1 before it was stopped.
    const bytes = (await readFile(file)).length;
    const headers = { authorization: `Bearer ${token}`, 'content-type': 'application/json' };
    const started = (await (
      await fetch(`${server.url}/api/v1/upload-sessions`, {
        method: 'POST',
        headers,
        body: JSON.stringify({
          dataset: 'synthea-observations',
          hospital: 'synthea',
          month: '2021-06',
          fileName: 'hospital-export.csv',
          bytes,
          partBytes: 5 * mebibyte,
        }),
      })
    ).json()) as UploadSessionView;
    expect(started.parts).toBe(3);
    const target = (await (
      await fetch(`${server.url}/api/v1/upload-sessions/${started.id}/parts/1/target`, { headers })
    ).json()) as { url: string };
    const { length } = partRange(started, 1);
    const first = (await readFile(file)).subarray(0, length);
    expect((await fetch(target.url, { method: 'PUT', body: first })).status).toBe(200);

    const run = await send(
      [
        file,
        '--server',
        server.url,
        '--dataset',
        'synthea-observations',
        '--hospital',
        'synthea',
        '--month',
        '2021-06',
        '--resume',
        started.id,
      ],
      token,
    );
    expect(run.stderr).not.toContain('sent part 1 of 3');
    expect(run.stderr).toContain('sent part 2 of 3');
    expect(run.stderr).toContain('sent part 3 of 3');
    expect(run.code, run.stderr).toBe(0);
    expect(run.stdout).toMatch(/^Published release [0-9a-f-]+: /);
    // The token is the user's secret: never printed.
    expect(run.stdout + run.stderr).not.toContain(token);
  });

  it('says what to do without a token, and sends nothing', async () => {
    const run = await send(
      [file, '-s', server.url, '-d', 'synthea-observations', '-H', 'synthea', '-m', '2021-07'],
      '',
    );
    expect(run.code).toBe(1);
    expect(run.stderr).toContain('Set MEDLAKE_API_TOKEN');
  });
});
