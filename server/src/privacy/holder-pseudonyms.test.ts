import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestApp, testActor } from '../../test/helper.ts';
import { prepareDataset, synthea } from '../../test/ingest-helpers.ts';
import { lakeRowFiles, readParquetObjects } from '../../test/parquet.ts';
import { projectOfResearchers, runQuery } from '../../test/query-helpers.ts';
import type { App } from '../app.ts';
import type { User } from '../catalog/users-repository.ts';
import { loadEnv, type Env } from '../env.ts';
import { createLogger } from '../logger.ts';
import { openPlatform, type Platform } from '../platform.ts';
import { startQueryWorker, type QueryWorker } from '../use-cases/queries/query-worker.ts';
import { ingestUpload } from '../use-cases/ingest-upload.ts';
import { createApiToken } from '../use-cases/manage-access.ts';
import { reidentifyPatient } from '../use-cases/reidentify-patient.ts';

/**
 * Two projects with row-level grants on the same data: each sees pseudonyms of its own, so an
 * attacker holding both projects' exports cannot join them; members of one project share theirs;
 * the custodian traces a project's pseudonym back to the patient.
 */
describe('pseudonyms per project', () => {
  let home: string;
  let env: Env;
  let platform: Platform;
  let app: App;
  let worker: QueryWorker;
  const members: Record<string, User> = {};
  /** The patient pseudonyms each member's row-level result shows, by email. */
  const seen: Record<string, Set<string>> = {};

  const selectPatients = async (email: string, spec: object = {}) => {
    const { job, rows } = await runQuery(platform, members[email]!, {
      dataset: 'synthea-observations',
      select: ['patient', 'code', 'value'],
      ...spec,
    });
    expect(job.status).toBe('succeeded');
    return rows;
  };

  beforeAll(async () => {
    home = await mkdtemp(path.join(tmpdir(), 'medlake-holders-'));
    env = loadEnv({ MEDLAKE_HOME: home, LOG_LEVEL: 'silent' });
    platform = await openPlatform(env, { migrate: true });
    await prepareDataset(platform, 'synthea-observations');
    const ingested = await ingestUpload(platform, {
      actor: testActor,
      datasetId: 'synthea-observations',
      hospitalId: 'synthea',
      month: '2020-12',
      fileName: 'export.csv',
      source: { file: synthea('2020-12') },
    });
    expect(ingested.status).toBe('published');
    for (const [project, emails] of [
      ['alpha', ['a1@example.org', 'a2@example.org']],
      ['beta', ['b1@example.org']],
    ] as const) {
      Object.assign(
        members,
        await projectOfResearchers(platform, project, 'synthea-observations', emails),
      );
      for (const email of emails) {
        seen[email] = new Set((await selectPatients(email)).map((row) => String(row.patient)));
      }
    }
    worker = startQueryWorker(platform, { logger: createLogger('silent'), pollMs: 50 });
    app = await createTestApp(platform);
  }, 120_000);

  afterAll(async () => {
    await app?.close();
    await worker?.stop();
    await platform?.close().catch(() => undefined);
    await rm(home, { recursive: true, force: true });
  });

  it('shows each project pseudonyms of its own, the same for all its members', async () => {
    const lake = await readParquetObjects(platform.store, await lakeRowFiles(platform.store));
    const platformPseudonyms = new Set(lake.map((row) => String(row.patient)));
    const alpha = seen['a1@example.org']!;
    const beta = seen['b1@example.org']!;
    expect(alpha.size).toBe(platformPseudonyms.size);
    expect(beta.size).toBe(platformPseudonyms.size);
    expect([...seen['a2@example.org']!].sort()).toEqual([...alpha].sort());
    expect([...alpha].filter((p) => beta.has(p))).toEqual([]);
    expect([...alpha].filter((p) => platformPseudonyms.has(p))).toEqual([]);
    for (const pseudonym of alpha) expect(pseudonym).toMatch(/^p_[0-9a-f]{20}$/);
    // The transform the engine applied is the one the platform computes.
    const mapped = new Set(
      [...platformPseudonyms].map((p) => platform.privacy.pseudonymFor('project:alpha', p)),
    );
    expect([...mapped].sort()).toEqual([...alpha].sort());
  });

  it('makes two projects’ exports impossible to link on the patient', async () => {
    const exportOf = async (email: string) => {
      const token = (await createApiToken(platform, testActor, { email, name: 'export', days: 1 }))
        .token;
      const headers = { authorization: `Bearer ${token}` };
      const submitted = await app.inject({
        method: 'POST',
        url: '/api/v1/queries?wait=30',
        headers,
        payload: { dataset: 'synthea-observations', select: ['patient', 'code', 'value'] },
      });
      expect(submitted.statusCode, submitted.body).toBe(200);
      const { id } = submitted.json<{ id: string }>();
      const link = (
        await app.inject({
          method: 'POST',
          url: `/api/v1/queries/${id}/exports`,
          headers,
          payload: { format: 'csv' },
        })
      ).json<{ url: string }>();
      const [header, ...lines] = (await app.inject({ method: 'GET', url: link.url })).body
        .trimEnd()
        .split('\n');
      expect(header).toBe('patient,code,value');
      return lines.map((line) => line.split(',')[0]!);
    };
    const alphaExport = await exportOf('a1@example.org');
    const alphaAgain = await exportOf('a2@example.org');
    const betaExport = await exportOf('b1@example.org');
    // The linking attack: rows of one export whose patient appears in the other.
    const linked = (left: string[], right: string[]) => {
      const keys = new Set(right);
      return left.filter((patient) => keys.has(patient)).length;
    };
    expect(linked(alphaExport, alphaAgain)).toBe(alphaExport.length);
    expect(linked(alphaExport, betaExport)).toBe(0);
    expect(new Set(alphaExport)).toEqual(seen['a1@example.org']);
  });

  it('filters on a project’s own pseudonym', async () => {
    const one = [...seen['a1@example.org']!][0]!;
    const rows = await selectPatients('a1@example.org', {
      where: { column: 'patient', op: 'eq', value: one },
    });
    expect(rows.length).toBeGreaterThan(0);
    expect(new Set(rows.map((row) => row.patient))).toEqual(new Set([one]));
    // Another project's pseudonym means nothing here.
    const theirs = [...seen['b1@example.org']!][0]!;
    expect(
      await selectPatients('a1@example.org', {
        where: { column: 'patient', op: 'eq', value: theirs },
      }),
    ).toEqual([]);
  });

  it('lets the custodian trace a project’s pseudonym back to the patient, audited', async () => {
    const one = [...seen['a1@example.org']!][0]!;
    await app.close();
    await worker.stop();
    await platform.close();
    const request = {
      custodian: 'custodian',
      reason: 'incidental finding, ethics ref 7',
      source: 'test',
    };
    const identity = await reidentifyPatient(env, {
      ...request,
      pseudonym: one,
      holder: 'project:alpha',
    });
    expect(identity.kind).toBe('patient');
    const mrns = (await readFile(synthea('2020-12'), 'utf8'))
      .split('\n')
      .map((line) => line.split(',')[0]);
    expect(mrns).toContain(identity.realId);
    await expect(
      reidentifyPatient(env, { ...request, pseudonym: one, holder: 'project:beta' }),
    ).rejects.toThrow(/project:beta has no patient with the pseudonym/);
    platform = await openPlatform(env);
    const audited = await platform.audit.search(
      { action: 'reidentify' },
      { page: 1, pageSize: 10 },
    );
    expect(audited.entries.map((entry) => [entry.outcome, entry.details])).toEqual(
      expect.arrayContaining([
        ['success', expect.objectContaining({ holder: 'project:alpha' })],
        ['failure', expect.objectContaining({ holder: 'project:beta' })],
      ]),
    );
  });
});
