import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { DuckDBInstance } from '@duckdb/node-api';
import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { synthea } from '../../test/ingest-helpers.ts';
import { openCatalog } from '../catalog/catalog.ts';

const repositoryRoot = fileURLToPath(new URL('../../..', import.meta.url));
const bin = path.join(repositoryRoot, 'server/bin/medlake.js');

type Outcome = { code: number | null; stdout: string; stderr: string };

/** Runs the real `medlake` CLI in a child process with only the given configuration. */
async function medlake(args: string[], env: Record<string, string> = {}): Promise<Outcome> {
  const child = start(args, env);
  let stdout = '';
  let stderr = '';
  child.stdout?.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
  child.stderr?.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const [code] = (await once(child, 'exit')) as [number | null];
  return { code, stdout, stderr };
}

function start(args: string[], env: Record<string, string>): ChildProcess {
  return spawn(process.execPath, [bin, ...args], {
    cwd: repositoryRoot,
    env: { PATH: process.env.PATH ?? '', LOG_LEVEL: 'warn', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
}

/** Resolves with the first stdout match, or rejects with everything printed if it exits. */
function waitForOutput(child: ChildProcess, pattern: RegExp): Promise<RegExpMatchArray> {
  return new Promise((resolve, reject) => {
    let printed = '';
    const onData = (chunk: Buffer) => {
      printed += chunk.toString();
      const match = printed.match(pattern);
      if (match) resolve(match);
    };
    child.stdout?.on('data', onData);
    child.stderr?.on('data', onData);
    child.once('exit', (code) =>
      reject(new Error(`exited with ${code} before ready:\n${printed}`)),
    );
  });
}

describe('medlake CLI', () => {
  let home: string;

  beforeAll(async () => {
    home = await mkdtemp(path.join(tmpdir(), 'medlake-cli-'));
  });

  afterAll(async () => {
    await rm(home, { recursive: true, force: true });
  });

  it('lists its commands in --help', async () => {
    const { code, stdout } = await medlake(['--help']);
    expect(code).toBe(0);
    for (const command of ['serve', 'db'])
      expect(stdout).toMatch(new RegExp(`^\\s+${command}\\b`, 'm'));
    const db = await medlake(['db', '--help']);
    for (const command of ['migrate', 'rollback', 'status']) {
      expect(db.stdout).toMatch(new RegExp(`^\\s+${command}\\b`, 'm'));
    }
  });

  it('migrates a fresh catalog and reports its status', async () => {
    const env = { MEDLAKE_HOME: path.join(home, 'migrate') };
    const first = await medlake(['db', 'migrate'], env);
    expect(first.code).toBe(0);
    // Progress on stderr (each migration as it begins), the outcome on stdout.
    expect(first.stderr).toMatch(/^(applying \S+\n)+$/);
    expect(first.stdout).toMatch(/^applied 2026-11-26a-create-meta$/m);

    const again = await medlake(['db', 'migrate'], env);
    expect(again.stdout).toContain('The catalog is up to date.');

    const status = await medlake(['db', 'status'], env);
    expect(status.stdout).toMatch(/^2026-11-26a-create-meta {2}applied \d{4}-/m);
  });

  it('stops with one clear line, and no stack trace, when the catalog is unreachable', async () => {
    const { code, stderr } = await medlake(['serve'], {
      MEDLAKE_HOME: path.join(home, 'unreachable'),
      DATABASE_URL: 'postgres://medlake:topsecret@nowhere:1/x',
    });
    expect(code).toBe(1);
    expect(stderr).toMatch(
      /^medlake: Cannot open the catalog database at postgres:\/\/nowhere:1\/x/,
    );
    expect(stderr).not.toMatch(/^\s+at /m);
    expect(stderr).not.toContain('topsecret');
  });

  it('names the bad variable when the configuration is invalid', async () => {
    const { code, stderr } = await medlake(['serve'], { PORT: 'http' });
    expect(code).toBe(1);
    expect(stderr).toContain('Invalid configuration:');
    expect(stderr).toMatch(/^ {2}PORT: /m);
  });

  it('refuses a malformed export with exit status 2 and file:line:column problems', async () => {
    const env = { MEDLAKE_HOME: path.join(home, 'ingest') };
    const contract = path.join(repositoryRoot, 'server/config/contracts/synthea-observations.json');
    expect((await medlake(['hospitals', 'add', 'synthea', '--name', 'Synthea'], env)).code).toBe(0);
    expect((await medlake(['datasets', 'create', '--contract', contract], env)).code).toBe(0);
    const lines = (await readFile(synthea('2020-12'), 'utf8')).split('\n');
    const bad = path.join(home, 'bad-2020-12.csv');
    await writeFile(
      bad,
      [...lines.slice(0, 4), `${lines[4]},extra`, ...lines.slice(5, 9)].join('\n'),
    );
    const result = await medlake(
      ['ingest', bad, '-d', 'synthea-observations', '-H', 'synthea', '-m', '2020-12'],
      env,
    );
    expect(result.code).toBe(2);
    expect(result.stdout).toContain('Rejected: bad-2020-12.csv was not published (1 problem).');
    expect(result.stdout).toMatch(
      /^ {2}bad-2020-12\.csv:5:22: the line has more fields than the header's 21$/m,
    );
  });

  it('assesses a dataset against Safe Harbor: the 18 identifiers, the standard, the quasi-identifiers', async () => {
    const env = { MEDLAKE_HOME: path.join(home, 'assess') };
    const contract = path.join(repositoryRoot, 'server/config/contracts/synthea-observations.json');
    expect((await medlake(['datasets', 'create', '--contract', contract], env)).code).toBe(0);
    const result = await medlake(['datasets', 'assess', 'synthea-observations'], env);
    expect(result.code).toBe(0);
    expect(result.stdout).toMatch(/^De-identification of synthea-observations: limited data set$/m);
    expect(result.stdout.match(/^ {2}(ok |NOT) \([A-R]\) /gm)).toHaveLength(18);
    expect(result.stdout).toMatch(/^ {2}NOT \(C\) All elements of dates/m);
    expect(result.stdout).toMatch(/^ {2}- birth_year \+ age \+ death_date \+ observed_at: /m);
    const json = await medlake(['datasets', 'assess', 'synthea-observations', '--json'], env);
    expect(JSON.parse(json.stdout)).toMatchObject({ standard: 'limited_data_set' });
    expect((await medlake(['datasets', 'assess', 'no-such-dataset'], env)).code).not.toBe(0);
  });

  it('adds a researcher, grants access and runs a query with their rights', async () => {
    const env = { MEDLAKE_HOME: path.join(home, 'query') };
    const contract = path.join(repositoryRoot, 'server/config/contracts/synthea-observations.json');
    const fixture = synthea('all');
    for (const args of [
      ['hospitals', 'add', 'synthea', '--name', 'Synthea'],
      ['datasets', 'create', '--contract', contract],
      ['ingest', fixture, '-d', 'synthea-observations', '-H', 'synthea', '-m', '2021-06'],
      ['users', 'add', '-e', 'ann@example.org', '-n', 'Ann', '-r', 'researcher'],
      ['grants', 'add', '-e', 'ann@example.org', '-d', 'synthea-observations', '-l', 'aggregate'],
    ]) {
      const result = await medlake(args, env);
      expect(result.code, result.stderr).toBe(0);
    }
    const spec = path.join(home, 'by-sex.json');
    await writeFile(
      spec,
      JSON.stringify({
        groupBy: [{ column: 'sex' }, { column: 'race' }],
        measures: [{ fn: 'patients' }],
        orderBy: [{ by: 'sex' }, { by: 'race' }],
      }),
    );
    const printed = await medlake(
      ['query', '--spec', spec, '-d', 'synthea-observations', '--as', 'ann@example.org'],
      env,
    );
    expect(printed.code, printed.stderr).toBe(0);
    // Of the eight groups, only white women and white men have 11 patients or more: the other
    // six are left out, labels included, and the total covers the two shown.
    expect(printed.stdout).toContain('44 patients and 16,145 rows in the groups shown.');
    expect(printed.stdout).toMatch(/^F\s+white\s+22\s*$/m);
    expect(printed.stdout).toMatch(/^M\s+white\s+22\s*$/m);
    expect(printed.stdout).not.toMatch(/black|asian|hawaiian/);

    const asJson = await medlake(
      ['query', '--spec', spec, '-d', 'synthea-observations', '--as', 'ann@example.org', '--json'],
      env,
    );
    const { query, result } = JSON.parse(asJson.stdout) as {
      query: { status: string; summary: { withheldGroups: number } };
      result: { rows: Array<{ patients: number | string }> };
    };
    expect(query.status).toBe('succeeded');
    expect(query.summary.withheldGroups).toBe(6);
    expect(result.rows.map((row) => row.patients)).toEqual([22, 22]);

    await writeFile(spec, JSON.stringify({ select: ['code'] }));
    const refused = await medlake(
      ['query', '--spec', spec, '-d', 'synthea-observations', '--as', 'ann@example.org'],
      env,
    );
    expect(refused.code).toBe(1);
    expect(refused.stderr).toContain('row-level output needs row access');
  });

  it('says when a grant ends as the last day of access, not as a UTC timestamp', async () => {
    const env = { MEDLAKE_HOME: path.join(home, 'query') };
    const lastDay = new Date(Date.now() + 365 * 86_400_000).toISOString().slice(0, 10);
    const eve = ['-e', 'eve@example.org'];
    const added = await medlake(['users', 'add', ...eve, '-n', 'Eve', '-r', 'researcher'], env);
    expect(added.code, added.stderr).toBe(0);
    const access = ['-d', 'synthea-observations', '-l', 'aggregate', '--expires', lastDay];
    const granted = await medlake(['grants', 'add', ...eve, ...access], env);
    expect(granted.code, granted.stderr).toBe(0);
    expect(granted.stdout).toContain(`until ${lastDay} included (grant `);
    const listed = await medlake(['grants', 'list'], env);
    expect(listed.stdout).toMatch(/\blast day\s*$/m);
    expect(listed.stdout).toMatch(
      new RegExp(`^\\S+\\s+eve@example\\.org\\s.*\\s${lastDay}\\s*$`, 'm'),
    );
    expect(listed.stdout).toMatch(/^\S+\s+ann@example\.org\s.*\sno end date\s*$/m);
    expect(granted.stdout + listed.stdout).not.toMatch(/T\d\d:\d\d/);
  });

  it('re-identifies a pseudonym for a custodian only with an audit entry', async () => {
    const env = { MEDLAKE_HOME: path.join(home, 'query') };
    const instance = await DuckDBInstance.create(':memory:');
    const connection = await instance.connect();
    const lake = path.join(env.MEDLAKE_HOME, 'objects/lake/**/*.parquet');
    const [row] = (
      await connection.runAndReadAll(`SELECT patient FROM read_parquet('${lake}') LIMIT 1`)
    ).getRowObjectsJson();
    connection.closeSync();
    instance.closeSync();
    const pseudonym = String(row?.patient);

    const found = await medlake(
      ['vault', 'reidentify', pseudonym, '--reason', 'incidental finding, ethics ref 12'],
      env,
    );
    expect(found.code, found.stderr).toBe(0);
    expect(found.stdout).toContain(`${pseudonym} is patient `);
    const missing = await medlake(
      ['vault', 'reidentify', 'p_not-a-pseudonym', '--reason', 'checking the audit trail'],
      env,
    );
    expect(missing.code).toBe(1);

    const listed = await medlake(['audit', 'list', '--json', '--action', 'reidentify'], env);
    const { entries } = JSON.parse(listed.stdout) as {
      entries: Array<{ target: string; outcome: string; details: Record<string, unknown> }>;
    };
    expect(entries.map((entry) => [entry.target, entry.outcome])).toEqual([
      ['pseudonym:p_not-a-pseudonym', 'failure'],
      [`pseudonym:${pseudonym}`, 'success'],
    ]);
    // The real id never reaches the audit log.
    const realId = /is patient (\S+) /.exec(found.stdout)?.[1] ?? '';
    expect(realId.length).toBeGreaterThan(3);
    expect(listed.stdout).not.toContain(realId);
  });

  it('keeps what the commands above did in the audit log, and names an edited entry', async () => {
    const env = { MEDLAKE_HOME: path.join(home, 'query') };
    const listed = await medlake(['audit', 'list', '--json', '-n', '100'], env);
    expect(listed.code, listed.stderr).toBe(0);
    const { entries } = JSON.parse(listed.stdout) as {
      entries: Array<{ seq: number; action: string; actor: string | null; source: string }>;
    };
    const actions = entries.map((entry) => `${entry.action} by ${entry.actor}`).reverse();
    expect(actions).toEqual(
      expect.arrayContaining([
        expect.stringMatching(/^release\.publish by cli:/),
        expect.stringMatching(/^upload by cli:/),
        expect.stringMatching(/^user\.create by cli:/),
        expect.stringMatching(/^grant\.add by cli:/),
        'query.submit by ann@example.org',
      ]),
    );
    expect(entries.every((entry) => entry.source.startsWith('cli:'))).toBe(true);

    const intact = await medlake(['audit', 'verify'], env);
    expect(intact.code, intact.stderr).toBe(0);
    expect(intact.stdout).toMatch(
      /^The audit log is intact: \d+ entries, last #\d+ [0-9a-f]{64}; it matches [1-9]\d* signed checkpoint\(s\), the newest of entry #\d+ at .* in .*-audit\.$/m,
    );

    const grant = entries.find((entry) => entry.action === 'grant.add');
    const catalog = await openCatalog({ directory: path.join(env.MEDLAKE_HOME, 'catalog') });
    try {
      await sql`alter table audit_log disable trigger audit_log_append_only`.execute(catalog.db);
      await sql`update audit_log set details = jsonb_set(details, '{level}', '"row"') where seq = ${grant?.seq}`.execute(
        catalog.db,
      );
    } finally {
      await catalog.close();
    }
    const broken = await medlake(['audit', 'verify'], env);
    expect(broken.code).toBe(1);
    // At the entry after the last checkpoint that still fits, which vouches for no more.
    const [, at] = /the audit log is broken at entry #(\d+):/.exec(broken.stderr) ?? [];
    expect(Number(at)).toBeGreaterThan(0);
    expect(Number(at)).toBeLessThanOrEqual(grant!.seq);
    expect(broken.stderr).toContain(`entry ${grant?.seq} was changed after it was written`);
  });

  it('prints the query spec’s JSON Schema', async () => {
    const { code, stdout } = await medlake(['query', '--schema']);
    expect(code).toBe(0);
    const schema = JSON.parse(stdout) as {
      properties: Record<string, unknown>;
      required: string[];
    };
    expect(Object.keys(schema.properties)).toEqual(
      expect.arrayContaining(['dataset', 'where', 'cohort', 'groupBy', 'measures', 'select']),
    );
    expect(schema.required).toEqual(['dataset']);
  });

  describe('serve', () => {
    let server: ChildProcess;
    let baseUrl: string;
    const serverHome = () => path.join(home, 'serve');

    beforeAll(async () => {
      server = start(['serve'], { MEDLAKE_HOME: serverHome(), PORT: '0' });
      const match = await waitForOutput(server, /medlake is running at (http:\/\/\S+?)\/ /);
      baseUrl = match[1] ?? '';
    });

    afterAll(async () => {
      if (server.exitCode === null) {
        server.kill('SIGTERM');
        await once(server, 'exit');
      }
    });

    it('serves the health report and the built web app', async () => {
      const health = await fetch(`${baseUrl}/api/health`);
      expect(health.status).toBe(200);
      expect(await health.json()).toMatchObject({ status: 'ok' });

      const page = await fetch(`${baseUrl}/`);
      expect(page.status).toBe(200);
      expect(await page.text()).toBe(
        await readFile(path.join(repositoryRoot, 'web/dist/index.html'), 'utf8'),
      );
    });

    it('refuses a second process on the same MEDLAKE_HOME', async () => {
      const { code, stderr } = await medlake(['db', 'migrate'], { MEDLAKE_HOME: serverHome() });
      expect(code).toBe(1);
      expect(stderr).toMatch(/^medlake: MEDLAKE_HOME .* is in use by another medlake process/);
    });

    it('shuts down cleanly on SIGTERM and frees its home', async () => {
      server.kill('SIGTERM');
      const [code] = (await once(server, 'exit')) as [number | null];
      expect(code).toBe(0);
      const after = await medlake(['db', 'status'], { MEDLAKE_HOME: serverHome() });
      expect(after.code).toBe(0);
    });
  });
});
