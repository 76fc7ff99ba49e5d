import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { createReadStream } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { lakeColumns } from '@medlake/shared';
import { parse } from 'csv-parse/sync';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { contractFile, listFiles, repositoryRoot, synthea } from '../../test/ingest-helpers.ts';
import { exitAndOutput } from '../../test/medlake-process.ts';
import { readParquet } from '../../test/parquet.ts';
import { parseContract } from '../use-cases/manage-datasets.ts';
import { sql } from 'kysely';
import { text } from 'node:stream/consumers';
import { usersRepository } from '../catalog/users-repository.ts';
import { loadEnv } from '../env.ts';
import { openPlatform } from '../platform.ts';
import { exportQueryResult } from '../use-cases/queries/export-query.ts';

const bin = path.join(repositoryRoot, 'server/bin/medlake.js');

type Run = { code: number | null; output: string };

/** Runs the real CLI; returns its exit code and everything it printed. */
async function medlake(args: string[], env: Record<string, string>): Promise<Run> {
  const child = spawn(process.execPath, [bin, ...args], {
    cwd: repositoryRoot,
    env: { PATH: process.env.PATH ?? '', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  return exitAndOutput(child);
}

/** What identifies the fixture's patients: the values that must never leave the vault. */
async function fixtureIdentifiers(): Promise<{ tokens: Set<string>; phrases: Set<string> }> {
  const rows = parse(await readFile(synthea('all')), { columns: true }) as Array<
    Record<string, string>
  >;
  const tokens = new Set<string>();
  const phrases = new Set<string>();
  for (const row of rows) {
    for (const field of ['MRN', 'SSN', 'FIRST', 'LAST', 'BIRTHDATE', 'ENCOUNTER']) {
      const value = row[field];
      if (value) tokens.add(value);
    }
    if (row.ADDRESS) phrases.add(row.ADDRESS);
  }
  return { tokens, phrases };
}

/** The identifiers found in a text: whole tokens, and addresses anywhere. */
function findIdentifiers(
  text: string,
  identifiers: { tokens: Set<string>; phrases: Set<string> },
): string[] {
  const found = new Set<string>();
  for (const token of text.match(/[A-Za-z0-9-]+/g) ?? []) {
    if (identifiers.tokens.has(token)) found.add(token);
  }
  for (const phrase of identifiers.phrases) if (text.includes(phrase)) found.add(phrase);
  return [...found];
}

describe('no identifier outside the vault', () => {
  let home: string;
  let env: Record<string, string>;
  const printed: string[] = [];
  const exports: string[] = [];
  const catalogDump: string[] = [];
  let vaultKey = '';
  let identifiers: { tokens: Set<string>; phrases: Set<string> };

  beforeAll(async () => {
    home = await mkdtemp(path.join(tmpdir(), 'medlake-privacy-'));
    env = { MEDLAKE_HOME: home, LOG_LEVEL: 'debug' };
    identifiers = await fixtureIdentifiers();
    const steps = [
      ['hospitals', 'add', 'synthea', '--name', 'Synthea General'],
      ['datasets', 'create', '--contract', contractFile('synthea-observations')],
      [
        'ingest',
        synthea('2020-12'),
        '-d',
        'synthea-observations',
        '-H',
        'synthea',
        '-m',
        '2020-12',
      ],
      [
        'ingest',
        synthea('2021-03'),
        '-d',
        'synthea-observations',
        '-H',
        'synthea',
        '-m',
        '2021-03',
        '--json',
      ],
      ['releases', 'list'],
      ['datasets', 'show', 'synthea-observations'],
      ['users', 'add', '-e', 'steward@example.org', '-n', 'Steward', '-r', 'steward'],
      ['stewards', 'assign', '-e', 'steward@example.org', '-H', 'synthea'],
    ];
    for (const args of steps) {
      const run = await medlake(args, env);
      printed.push(run.output);
      expect(run.code, run.output).toBe(0);
    }
    const tokenRun = await medlake(['users', 'token', '-e', 'steward@example.org'], env);
    const token = tokenRun.output.match(/mlk_\S+/)?.[0] ?? '';
    // The full export (every patient) through the HTTP API, with the server logging at debug.
    const server = spawn(process.execPath, [bin, 'serve'], {
      cwd: repositoryRoot,
      env: { PATH: process.env.PATH ?? '', ...env, PORT: '0' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let serverOutput = '';
    server.stderr.on('data', (chunk: Buffer) => (serverOutput += chunk.toString()));
    const url = await new Promise<string>((resolve, reject) => {
      server.stdout.on('data', (chunk: Buffer) => {
        serverOutput += chunk.toString();
        const match = serverOutput.match(/running at (http:\/\/\S+?)\/ /);
        if (match?.[1]) resolve(match[1]);
      });
      server.once('exit', () => reject(new Error(serverOutput)));
    });
    const response = await fetch(
      `${url}/api/uploads?dataset=synthea-observations&hospital=synthea&month=2022-02&fileName=all.csv`,
      {
        method: 'POST',
        headers: { 'content-type': 'text/csv', authorization: `Bearer ${token}` },
        body: Readable.toWeb(createReadStream(synthea('all'))) as ReadableStream,
        duplex: 'half',
      } as RequestInit,
    );
    printed.push(await response.text());
    expect(response.status).toBe(201);
    // A file with a broken row: the report names line and column, never the row's values.
    const [header, ...lines] = (await readFile(synthea('2021-03'), 'utf8')).trimEnd().split('\n');
    const broken = [header, ...lines.slice(0, 5), `${lines[5]},extra`, ...lines.slice(6, 20)];
    const rejected = await fetch(
      `${url}/api/uploads?dataset=synthea-observations&hospital=synthea&month=2022-03&fileName=bad.csv`,
      {
        method: 'POST',
        headers: { 'content-type': 'text/csv', authorization: `Bearer ${token}` },
        body: broken.join('\n'),
      },
    ).catch((error: unknown) => {
      throw new Error(`${String(error)}\n${serverOutput.slice(-3000)}`);
    });
    expect(rejected.status).toBe(422);
    printed.push(await rejected.text());
    server.kill('SIGTERM');
    await once(server, 'exit');
    printed.push(serverOutput);

    // A row-level query of every lake column: its stored result and its printout are scanned too.
    const spec = path.join(home, 'every-column.json');
    const columns = lakeColumns(
      parseContract(JSON.parse(await readFile(contractFile('synthea-observations'), 'utf8'))),
    );
    await writeFile(
      spec,
      JSON.stringify({
        dataset: 'synthea-observations',
        select: columns.map((column) => column.name),
      }),
    );
    // And an aggregate of every code, small enough to be kept in the catalog (query_results),
    // not as a file: that table is scanned with the others below.
    const aggregate = path.join(home, 'by-code.json');
    await writeFile(
      aggregate,
      JSON.stringify({
        dataset: 'synthea-observations',
        groupBy: [{ column: 'code' }, { column: 'sex' }],
        measures: [{ fn: 'patients' }, { fn: 'count' }, { fn: 'mean', column: 'value' }],
      }),
    );
    for (const args of [
      ['users', 'add', '-e', 'row@example.org', '-n', 'Row', '-r', 'researcher'],
      ['grants', 'add', '-e', 'row@example.org', '-d', 'synthea-observations', '-l', 'row'],
      ['query', '--spec', spec, '--as', 'row@example.org', '--json'],
      ['query', '--spec', aggregate, '--as', 'row@example.org', '--json'],
    ]) {
      const run = await medlake(args, env);
      printed.push(run.output);
      expect(run.code, run.output).toBe(0);
    }

    // The row-level result exported as CSV, and every table of the catalog as text: a scan of
    // the database's files alone could miss values PostgreSQL stores compressed.
    const platform = await openPlatform(loadEnv({ MEDLAKE_HOME: home, LOG_LEVEL: 'silent' }));
    try {
      const user = await usersRepository(platform.catalog.db).byEmail('row@example.org');
      const job = await platform.catalog.db
        .selectFrom('query_jobs')
        .select('id')
        .where('user_id', '=', user!.id)
        .where(sql<boolean>`spec->'select' is not null`)
        .executeTakeFirstOrThrow();
      // The aggregate's rows are in the catalog, and its export is written from them.
      const kept = await platform.catalog.db
        .selectFrom('query_results')
        .select(['query_id', 'rows'])
        .executeTakeFirstOrThrow();
      expect(kept.rows.length).toBeGreaterThan(10);
      await exportQueryResult(platform, { user: user!, source: 'test' }, kept.query_id, 'csv');
      exports.push(await text(await platform.store.get(`results/${kept.query_id}/export.csv`)));
      const link = await exportQueryResult(
        platform,
        { user: user!, source: 'test' },
        job.id,
        'csv',
      );
      const exported = await text(await platform.store.get(`results/${job.id}/export.csv`));
      expect(exported.split('\n').length).toBeGreaterThan(20_000);
      exports.push(exported);
      printed.push(JSON.stringify(link));
      const tables = await sql<{ name: string }>`
        SELECT table_name AS name FROM information_schema.tables
        WHERE table_schema = 'public' AND table_type = 'BASE TABLE'`.execute(platform.catalog.db);
      for (const { name } of tables.rows) {
        const rows = await sql`SELECT * FROM ${sql.table(name)}`.execute(platform.catalog.db);
        catalogDump.push(`${name}\n${JSON.stringify(rows.rows)}`);
      }
    } finally {
      await platform.close();
    }
    vaultKey = (await readFile(path.join(home, 'keys', 'vault.key'), 'utf8')).trim();
    // Nine CLI runs, a server and a full export: past the 120 s default at load 17 once.
  }, 300_000);

  afterAll(async () => {
    await rm(home, { recursive: true, force: true });
  });

  it('finds the fixture identifiers where they should be: in the raw exports', async () => {
    // A scan that cannot find anything proves nothing; it must find them in the input.
    expect(
      findIdentifiers(await readFile(synthea('2020-12'), 'latin1'), identifiers).length,
    ).toBeGreaterThan(50);
  });

  it('leaves none in any file under MEDLAKE_HOME outside the vault', async () => {
    const vault = path.join(home, 'vault');
    const files = (await listFiles(home)).filter((file) => !file.startsWith(`${vault}${path.sep}`));
    expect(files.some((file) => file.endsWith('.parquet'))).toBe(true);
    expect(files.some((file) => file.includes(`${path.sep}catalog${path.sep}`))).toBe(true);
    for (const file of files) {
      expect(findIdentifiers(await readFile(file, 'latin1'), identifiers), file).toEqual([]);
    }
  });

  it('leaves none in the decoded Parquet either', async () => {
    const parquet = (await listFiles(home)).filter((file) => file.endsWith('.parquet'));
    const lake = parquet.filter((file) => file.includes(`${path.sep}lake${path.sep}`));
    expect(lake).toHaveLength(3);
    const results = parquet.filter((file) => file.includes(`${path.sep}results${path.sep}`));
    expect(results).toHaveLength(1);
    expect(await readParquet(results)).toHaveLength(1052 + 867 + 21697);
    const rows = await readParquet(parquet);
    expect(rows.length).toBe(2 * (1052 + 867 + 21697));
    const values = rows.flatMap((row) => Object.values(row).map((value) => String(value)));
    expect(findIdentifiers(values.join('\n'), identifiers)).toEqual([]);
  });

  it('leaves none in the dictionary pairs files beside the releases, decoded', async () => {
    const pairs = (await listFiles(home)).filter((file) => file.endsWith(`${path.sep}pairs.pq`));
    expect(pairs).toHaveLength(3);
    const rows = await readParquet(pairs);
    expect(rows.length).toBeGreaterThan(0);
    const values = rows.flatMap((row) => Object.values(row).map((value) => String(value)));
    expect(findIdentifiers(values.join('\n'), identifiers)).toEqual([]);
  });

  it('prints and logs none, in the CLI, the API answers, its error reports or the server log', () => {
    expect(printed.join('\n').length).toBeGreaterThan(1000);
    expect(findIdentifiers(printed.join('\n'), identifiers)).toEqual([]);
  });

  it('exports none, and the catalog, read table by table, holds none', () => {
    expect(findIdentifiers(exports.join('\n'), identifiers)).toEqual([]);
    expect(catalogDump.length).toBeGreaterThan(10);
    expect(findIdentifiers(catalogDump.join('\n'), identifiers)).toEqual([]);
  });

  it('shows the vault key nowhere but in its own file', async () => {
    const bytes = Buffer.from(vaultKey, /^[0-9a-f]{64}$/i.test(vaultKey) ? 'hex' : 'base64');
    expect(bytes).toHaveLength(32);
    const forms = [bytes.toString('hex'), bytes.toString('base64')];
    const keyFile = path.join(home, 'keys', 'vault.key');
    const vault = path.join(home, 'vault');
    const files = (await listFiles(home)).filter(
      (file) => file !== keyFile && !file.startsWith(`${vault}${path.sep}`),
    );
    const everything = [...printed, ...exports, ...catalogDump];
    for (const file of files) everything.push(await readFile(file, 'latin1'));
    for (const form of forms) {
      expect(everything.some((content) => content.includes(form))).toBe(false);
    }
  });
});
