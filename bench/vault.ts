// npm run bench:vault — the cost of the vault on its own host: one month of a hospital's
// export whose patients are all new (3.8 M rows, about 316,000 patients, by default), ingested
// with the embedded vault and with `medlake vault serve` (mutual TLS, on this machine), in
// turn, in the same command. Prints each time, the pseudonymize phase of each, and the ratio
// (issue 26's target: the vault service within 1.2× of the embedded vault). Options: --rows N,
// --runs N (default 2), --dir DIR (where the generated file is kept between runs).
import { execFile, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { parseArgs, promisify } from 'node:util';
import { generateExports } from '../server/src/demo/generate-exports.ts';

const run = promisify(execFile);
const { values } = parseArgs({
  options: {
    rows: { type: 'string', default: '3800000' },
    runs: { type: 'string', default: '2' },
    dir: { type: 'string', default: path.join(tmpdir(), 'medlake-bench-vault') },
  },
});
const rows = Number(values.rows);
const directory = path.join(values.dir, `rows-${rows}`);
const csv = path.join(directory, 'h01-2024-01.csv');
if (!existsSync(csv)) {
  console.log(`generating a month of ${rows.toLocaleString('en-US')} rows …`);
  await mkdir(directory, { recursive: true });
  await generateExports({
    hospitals: 1,
    months: 1,
    rows,
    outDir: directory,
    firstMonth: '2024-01',
  });
}

const root = new URL('..', import.meta.url).pathname;
const bin = path.join(root, 'server/bin/medlake.js');
const scratch = await mkdtemp(path.join(tmpdir(), 'medlake-bench-vault-'));
const certs = path.join(scratch, 'certs');
await run(process.execPath, [bin, 'vault', 'certs', certs], {
  env: { PATH: process.env.PATH ?? '', MEDLAKE_HOME: path.join(scratch, 'certs-home') },
});

type Measurement = { seconds: number; phaseSeconds: Record<string, number> };

/** One ingest on a fresh home (bench/ingest-medlake.ts), with the vault settings given. */
async function ingest(vaultEnv: Record<string, string>): Promise<Measurement> {
  const { stdout } = await run(
    process.execPath,
    [path.join(root, 'bench/ingest-medlake.ts'), csv, '2024-01'],
    { env: { PATH: process.env.PATH ?? '', ...vaultEnv }, maxBuffer: 1 << 24 },
  );
  return JSON.parse(stdout.trim().split('\n').at(-1) ?? '{}') as Measurement;
}

/** A vault service on a fresh vault home: every patient of the month is new to it. */
async function withVaultService<T>(work: (url: string) => Promise<T>): Promise<T> {
  const home = await mkdtemp(path.join(scratch, 'vault-host-'));
  const child = spawn(process.execPath, [bin, 'vault', 'serve', '--certs', certs, '--port', '0'], {
    env: { PATH: process.env.PATH ?? '', MEDLAKE_HOME: home, LOG_LEVEL: 'warn' },
  });
  try {
    const url = await new Promise<string>((resolve, reject) => {
      let output = '';
      child.stdout.on('data', (chunk: Buffer) => {
        output += chunk.toString();
        const address = /running at (https:\/\/[^/ ]+)\//.exec(output)?.[1];
        if (address) resolve(address);
      });
      child.once('exit', (code) => reject(new Error(`vault serve exited with ${code}`)));
    });
    return await work(url);
  } finally {
    child.kill('SIGTERM');
    await rm(home, { recursive: true, force: true });
  }
}

const pseudonymizing = (m: Measurement) => m.phaseSeconds.pseudonymizing ?? 0;
const results: Array<{ embedded: Measurement; service: Measurement }> = [];
try {
  for (let n = 0; n < Number(values.runs); n++) {
    const embedded = await ingest({});
    const service = await withVaultService((url) =>
      ingest({
        MEDLAKE_VAULT_URL: url,
        MEDLAKE_VAULT_CA_PATH: path.join(certs, 'ca.crt'),
        MEDLAKE_VAULT_CLIENT_CERT_PATH: path.join(certs, 'client.crt'),
        MEDLAKE_VAULT_CLIENT_KEY_PATH: path.join(certs, 'client.key'),
      }),
    );
    results.push({ embedded, service });
    console.log(
      `run ${n + 1}: embedded ${embedded.seconds.toFixed(1)} s (pseudonyms ${pseudonymizing(embedded).toFixed(1)} s), ` +
        `vault service ${service.seconds.toFixed(1)} s (pseudonyms ${pseudonymizing(service).toFixed(1)} s): ` +
        `${(service.seconds / embedded.seconds).toFixed(2)}×`,
    );
  }
} finally {
  await rm(scratch, { recursive: true, force: true });
}
const best = (pick: (r: (typeof results)[number]) => Measurement) =>
  Math.min(...results.map((r) => pick(r).seconds));
const ratio = best((r) => r.service) / best((r) => r.embedded);
console.log(
  `best of ${results.length}: embedded ${best((r) => r.embedded).toFixed(1)} s, vault service ${best((r) => r.service).toFixed(1)} s, ` +
    `ratio ${ratio.toFixed(2)} (target ≤ 1.20): ${ratio <= 1.2 ? 'met' : 'NOT met'}`,
);
console.log(`phases (last run): embedded ${JSON.stringify(results.at(-1)?.embedded.phaseSeconds)}`);
console.log(`                   service  ${JSON.stringify(results.at(-1)?.service.phaseSeconds)}`);
