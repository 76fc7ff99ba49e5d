import { randomUUID } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { attemptTally } from '../../test/attempts.ts';
import { tokensWithGrants, userWithToken } from '../../test/api-helpers.ts';
import {
  createTestApp,
  createTestPlatform,
  testActor,
  type TestPlatform,
} from '../../test/helper.ts';
import { prepareDataset, stewardWithToken, synthea } from '../../test/ingest-helpers.ts';
import type { App } from '../app.ts';
import { usersRepository } from '../catalog/users-repository.ts';
import { csrfHeader, sessionCookie } from '../http/authenticate.ts';
import { createLogger } from '../logger.ts';
import { routeRules } from '../policy.ts';
import { startQueryWorker, type QueryWorker } from '../use-cases/queries/query-worker.ts';
import { openSession } from '../use-cases/accounts/sign-in.ts';
import { createUserWithPassword, setUserDisabled } from '../use-cases/accounts/manage-users.ts';
import { createProject, setProjectMember } from '../use-cases/access/projects.ts';
import { grantDatasetAccess, revokeGrant } from '../use-cases/manage-access.ts';

type Response = Awaited<ReturnType<App['inject']>>;

/**
 * The attacks on access of issue 9, each tried through the HTTP API as an attacker would, and
 * counted: every attempt is checked to fail, and the tally per class is printed for
 * docs/reliability.md. An attempt "succeeds" when it gets a 2xx answer with what it was after.
 */
describe('attacks on access', () => {
  let platform: TestPlatform;
  let app: App;
  let worker: QueryWorker;
  const tokens: Record<string, string> = {};
  /** Counts one attempt of a class; it succeeded when `succeeded` holds. */
  const { tally, attempt } = attemptTally();
  const ok = (response: Response) => response.statusCode >= 200 && response.statusCode < 300;

  const call = (
    who: string | { cookie: string; csrf?: string } | undefined,
    method: 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE',
    url: string,
    payload?: unknown,
  ) =>
    app.inject({
      method,
      url,
      headers: {
        ...(typeof who === 'string' ? { authorization: `Bearer ${tokens[who]}` } : {}),
        ...(typeof who === 'object' && who.csrf ? { [csrfHeader]: who.csrf } : {}),
      },
      cookies: typeof who === 'object' ? { [sessionCookie]: who.cookie } : {},
      ...(payload === undefined ? {} : { payload: payload as object }),
    });

  const sessionOf = async (email: string) => {
    const user = await usersRepository(platform.catalog.db).byEmail(email);
    const opened = await openSession(platform, user!, 'password', { source: 'test' }, new Date());
    return { cookie: opened.token, csrf: opened.session.csrfToken };
  };

  const spec = {
    dataset: 'synthea-observations',
    groupBy: [{ column: 'code' }, { column: 'sex' }],
    measures: [{ fn: 'count' }, { fn: 'patients' }],
  };

  /** Submits as the user and waits for the worker to finish. */
  const finished = async (who: string, query: unknown) => {
    const submitted = await call(who, 'POST', '/api/v1/queries?wait=30', query);
    expect([200, 202], submitted.body).toContain(submitted.statusCode);
    const id = submitted.json<{ id: string }>().id;
    const job = (await call(who, 'GET', `/api/v1/queries/${id}?wait=30`)).json<{
      id: string;
      status: string;
    }>();
    expect(job.status).toBe('succeeded');
    return id;
  };

  // What the victims own, for the others to go after.
  let aliceQuery: string;
  let aliceExport: { exportId: string; url: string };
  let upload: string;
  let uploadSession: string;

  beforeAll(async () => {
    platform = await createTestPlatform();
    await prepareDataset(platform, 'synthea-observations', ['synthea', 'other']);
    Object.assign(
      tokens,
      await tokensWithGrants(platform, 'synthea-observations', {
        'alice@example.org': 'aggregate',
        'mallory@example.org': 'aggregate',
        'rowan@example.org': 'row',
      }),
    );
    tokens['steward@example.org'] = await stewardWithToken(
      platform,
      'steward@example.org',
      'synthea',
    );
    tokens['rival@example.org'] = await stewardWithToken(platform, 'rival@example.org', 'other');
    worker = startQueryWorker(platform, { logger: createLogger('silent'), pollMs: 50 });
    app = await createTestApp(platform);

    const uploaded = await app.inject({
      method: 'POST',
      url: '/api/uploads?dataset=synthea-observations&hospital=synthea&month=2020-12&fileName=export.csv',
      headers: {
        authorization: `Bearer ${tokens['steward@example.org']}`,
        'content-type': 'text/csv',
      },
      payload: await readFile(synthea('2020-12')),
    });
    expect(uploaded.statusCode, uploaded.body).toBe(201);
    upload = uploaded.json<{ jobId: string }>().jobId;
    const session = await call('steward@example.org', 'POST', '/api/v1/upload-sessions', {
      dataset: 'synthea-observations',
      hospital: 'synthea',
      month: '2021-01',
      fileName: 'next.csv',
      bytes: 100,
    });
    expect(session.statusCode).toBe(201);
    uploadSession = session.json<{ id: string }>().id;

    aliceQuery = await finished('alice@example.org', spec);
    const exported = await call(
      'alice@example.org',
      'POST',
      `/api/v1/queries/${aliceQuery}/exports`,
      {
        format: 'csv',
      },
    );
    expect(exported.statusCode).toBe(201);
    aliceExport = exported.json();
  }, 120_000);

  afterAll(async () => {
    console.log('attacks tried, per class (all failed):');
    for (const [kind, { tried, succeeded }] of tally) {
      console.log(`  ${kind}: ${tried} tried, ${succeeded} succeeded`);
    }
    await app?.close();
    await worker?.stop();
    await platform?.dispose();
  });

  it('IDOR: another user’s query, result, export, download, upload and upload session, and guessed ids', async () => {
    const queryUrls = (id: string) =>
      [
        ['GET', `/api/v1/queries/${id}`],
        ['GET', `/api/v1/queries/${id}/results`],
        ['POST', `/api/v1/queries/${id}/exports`, { format: 'csv' }],
        ['DELETE', `/api/v1/queries/${id}`],
        ['DELETE', `/api/v1/admin/queries/${id}`],
      ] as const;
    for (const [method, url, body] of [...queryUrls(aliceQuery), ...queryUrls(randomUUID())]) {
      for (const who of ['mallory@example.org', 'rowan@example.org', 'steward@example.org']) {
        attempt('IDOR', ok(await call(who, method, url, body)), `${who} ${method} ${url}`);
      }
    }
    // Alice's link, used by someone else with their own identity in it.
    const link = new URL(aliceExport.url, 'http://medlake.test');
    const mallory = (await usersRepository(platform.catalog.db).byEmail('mallory@example.org'))!;
    link.searchParams.set('user', mallory.id);
    attempt(
      'IDOR',
      ok(await call(undefined, 'GET', `${link.pathname}${link.search}`)),
      'link as mallory',
    );
    for (const [method, url, body] of [
      ['GET', `/api/v1/uploads/${upload}`],
      ['GET', `/api/v1/uploads/${upload}/preview`],
      ['GET', `/api/v1/releases?hospital=synthea`],
      ['GET', `/api/v1/upload-sessions/${uploadSession}`],
      ['GET', `/api/v1/upload-sessions/${uploadSession}/parts/1/target`],
      ['POST', `/api/v1/upload-sessions/${uploadSession}/complete`, {}],
      ['DELETE', `/api/v1/upload-sessions/${uploadSession}`],
      ['GET', `/api/v1/uploads/${randomUUID()}`],
      ['GET', `/api/v1/upload-sessions/${randomUUID()}`],
    ] as const) {
      for (const who of ['rival@example.org', 'alice@example.org']) {
        attempt('IDOR', ok(await call(who, method, url, body)), `${who} ${method} ${url}`);
      }
    }
    const put = await app.inject({
      method: 'PUT',
      url: `/api/v1/upload-sessions/${uploadSession}/parts/1`,
      headers: {
        authorization: `Bearer ${tokens['rival@example.org']}`,
        'content-type': 'application/octet-stream',
      },
      payload: Buffer.from('x'.repeat(100)),
    });
    attempt('IDOR', ok(put), 'a part into another hospital’s upload');
    // The victim's things are still there and theirs.
    expect(
      (await call('alice@example.org', 'GET', `/api/v1/queries/${aliceQuery}`)).statusCode,
    ).toBe(200);
    expect(
      (await call('steward@example.org', 'GET', `/api/v1/upload-sessions/${uploadSession}`)).json(),
    ).toMatchObject({ status: 'open', arrived: [] });
  });

  it('path traversal: in download ids, upload names and ids, dataset ids and the web app’s files', async () => {
    const link = new URL(aliceExport.url, 'http://medlake.test');
    for (const id of [
      '..%2F..%2F..%2Fetc%2Fpasswd',
      '..%2F..%2Fkeys%2Fvault.key',
      '%2E%2E%2F%2E%2E%2Fcatalog',
      '....%2F%2F....%2F%2Fetc%2Fpasswd',
      '%2Fetc%2Fpasswd',
      `${aliceExport.exportId}%2F..%2F..%2Fkeys`,
    ]) {
      const response = await call(undefined, 'GET', `/api/v1/downloads/${id}${link.search}`);
      attempt('path traversal', ok(response) || /root:|[0-9a-f]{64}/.test(response.body), id);
    }
    for (const [dataset, hospital, fileName] of [
      ['synthea-observations', 'synthea', '../../../keys/vault.key'],
      ['synthea-observations', 'synthea', '..\\..\\catalog\\x.csv'],
      ['../../keys', 'synthea', 'x.csv'],
      ['synthea-observations', '../other', 'x.csv'],
      ['synthea-observations', 'synthea/../other', 'x.csv'],
    ]) {
      const response = await app.inject({
        method: 'POST',
        url: `/api/uploads?dataset=${encodeURIComponent(dataset!)}&hospital=${encodeURIComponent(hospital!)}&month=2020-11&fileName=${encodeURIComponent(fileName!)}`,
        headers: {
          authorization: `Bearer ${tokens['steward@example.org']}`,
          'content-type': 'text/csv',
        },
        payload: 'not,a,valid\nexport,at,all\n',
      });
      // A 4xx, or a rejected report for the steward's own hospital under a plain file name.
      const escaped =
        ok(response) &&
        (hospital !== 'synthea' ||
          dataset !== 'synthea-observations' ||
          /[\\/]/.test(response.json<{ fileName?: string }>().fileName ?? ''));
      attempt('path traversal', escaped, `${dataset} ${hospital} ${fileName}`);
    }
    const sessionWithName = await call('steward@example.org', 'POST', '/api/v1/upload-sessions', {
      dataset: 'synthea-observations',
      hospital: 'synthea',
      month: '2021-02',
      fileName: '../../../../tmp/escaped.csv',
      bytes: 100,
    });
    attempt(
      'path traversal',
      ok(sessionWithName) && /[\\/]/.test(sessionWithName.json<{ fileName: string }>().fileName),
      'upload session file name',
    );
    for (const url of [
      '/api/v1/datasets/..%2F..%2Fkeys/dictionary',
      '/api/v1/queries/..%2F..%2Fetc%2Fpasswd',
      '/..%2F..%2Fpackage.json',
      '/assets/..%2F..%2F..%2Fpackage.json',
      '/assets/%2E%2E/%2E%2E/%2E%2E/server/src/env.ts',
      '/%2e%2e/%2e%2e/keys/vault.key',
    ]) {
      const response = await call('alice@example.org', 'GET', url);
      attempt(
        'path traversal',
        /"name":\s*"medlake"|MEDLAKE_HOME|^[0-9a-f]{64}\s*$|root:/.test(response.body),
        url,
      );
    }
  });

  it('expired and tampered download links', async () => {
    const link = new URL(aliceExport.url, 'http://medlake.test');
    const signature = link.searchParams.get('signature')!;
    const variants: URL[] = [];
    // Every character of the signature changed, one at a time.
    for (let i = 0; i < signature.length; i += 1) {
      const changed = new URL(link);
      const swapped = signature[i] === '0' ? '1' : '0';
      changed.searchParams.set(
        'signature',
        signature.slice(0, i) + swapped + signature.slice(i + 1),
      );
      variants.push(changed);
    }
    for (const [name, value] of [
      ['expires', String(Math.floor(Date.now() / 1000) + 365 * 86_400)],
      ['expires', String(Math.floor(Date.now() / 1000) - 1)],
      ['signature', ''],
      ['user', randomUUID()],
    ] as const) {
      const changed = new URL(link);
      changed.searchParams.set(name, value);
      variants.push(changed);
    }
    const otherExport = new URL(link);
    otherExport.pathname = `/api/v1/downloads/${randomUUID()}`;
    variants.push(otherExport);
    for (const variant of variants) {
      attempt(
        'tampered or expired link',
        ok(await call(undefined, 'GET', `${variant.pathname}${variant.search}`)),
        variant.search,
      );
    }
    // A link past its time: signed as the server signs, an hour and a lifetime ago.
    const alice = (await usersRepository(platform.catalog.db).byEmail('alice@example.org'))!;
    const lifetime = platform.env.MEDLAKE_DOWNLOAD_TTL_SECONDS * 1000;
    const old = platform.downloads.create(
      { exportId: aliceExport.exportId, userId: alice.id },
      new Date(Date.now() - lifetime - 3_600_000),
    );
    attempt('tampered or expired link', ok(await call(undefined, 'GET', old.url)), 'expired');
  });

  it('a download link after its owner’s access ended, used by the owner, other users and anonymously', async () => {
    await createProject(platform, testActor, { id: 'leavers-2026', name: 'Leavers' });
    await grantDatasetAccess(platform, testActor, {
      projectId: 'leavers-2026',
      datasetId: 'synthea-observations',
      level: 'aggregate',
    });
    const rowSpec = { dataset: 'synthea-observations', select: ['code', 'value'], limit: 5 };
    // Each owner loses access one way, as an administrator (or time) takes it away.
    const owners: Array<{
      email: string;
      level: 'aggregate' | 'row' | 'project';
      query: unknown;
      end: (email: string, grantId: string | undefined) => Promise<unknown>;
    }> = [
      {
        email: 'revoked@example.org',
        level: 'aggregate',
        query: spec,
        end: (_, grantId) => revokeGrant(platform, testActor, grantId!),
      },
      {
        email: 'expired@example.org',
        level: 'aggregate',
        query: spec,
        end: (_, grantId) =>
          platform.catalog.db
            .updateTable('dataset_grants')
            .set({ expires_at: new Date(Date.now() - 1000) })
            .where('id', '=', grantId!)
            .execute(),
      },
      {
        email: 'left@example.org',
        level: 'project',
        query: spec,
        end: (email) =>
          setProjectMember(platform, testActor, {
            projectId: 'leavers-2026',
            email,
            member: false,
          }),
      },
      {
        email: 'gone@example.org',
        level: 'aggregate',
        query: spec,
        end: (email) => setUserDisabled(platform, testActor, { email, disabled: true }),
      },
      {
        email: 'narrowed@example.org',
        level: 'aggregate',
        query: spec,
        end: async (email, grantId) => {
          // One grant per user, dataset and level: the wide one goes before the narrow one.
          await revokeGrant(platform, testActor, grantId!);
          await grantDatasetAccess(platform, testActor, {
            email,
            datasetId: 'synthea-observations',
            level: 'aggregate',
            hospitals: ['other'],
          });
        },
      },
      {
        email: 'demoted@example.org',
        level: 'row',
        query: rowSpec,
        end: async (email, grantId) => {
          await grantDatasetAccess(platform, testActor, {
            email,
            datasetId: 'synthea-observations',
            level: 'aggregate',
          });
          await revokeGrant(platform, testActor, grantId!);
        },
      },
    ];
    for (const { email, level, query, end } of owners) {
      tokens[email] = (await userWithToken(platform, email)).token;
      const grant =
        level === 'project'
          ? await setProjectMember(platform, testActor, {
              projectId: 'leavers-2026',
              email,
              member: true,
            }).then(() => undefined)
          : await grantDatasetAccess(platform, testActor, {
              email,
              datasetId: 'synthea-observations',
              level,
            });
      const queryId = await finished(email, query);
      const exported = await call(email, 'POST', `/api/v1/queries/${queryId}/exports`, {
        format: 'csv',
      });
      expect(exported.statusCode, exported.body).toBe(201);
      const { url, exportId } = exported.json<{ url: string; exportId: string }>();
      // The link works while the access holds.
      expect((await call(undefined, 'GET', url)).statusCode).toBe(200);
      const browser = await sessionOf(email);

      await end(email, grant?.id);
      const users = usersRepository(platform.catalog.db);
      const tries: Array<[string, Parameters<typeof call>[0], string | null]> = [
        ['anonymous', undefined, null],
        ['its owner’s token', email, (await users.byEmail(email))!.id],
        ['its owner’s session', browser, (await users.byEmail(email))!.id],
        [
          'another aggregate user',
          'mallory@example.org',
          (await users.byEmail('mallory@example.org'))!.id,
        ],
        ['a row-level user', 'rowan@example.org', (await users.byEmail('rowan@example.org'))!.id],
      ];
      for (const [who, credential] of tries) {
        const used = await call(credential, 'GET', url);
        attempt('link after access ended', ok(used), `${email}: ${who}`);
        expect(used.json().error.message, `${email}: ${who}`).toMatch(/no longer works/);
      }
      attempt(
        'link after access ended',
        ok(await call(email, 'POST', `/api/v1/queries/${queryId}/exports`, { format: 'csv' })),
        `${email}: a fresh link`,
      );
      // Each refused use is in the audit log under who tried it; a disabled owner's token and
      // session no longer name anyone, so they count as anonymous.
      const refused = await platform.audit.search(
        { action: 'download', target: `export:${exportId}`, outcome: 'denied' },
        { page: 1, pageSize: 20 },
      );
      const named = tries.map(([, , id]) =>
        email === 'gone@example.org' && id === tries[1]![2] ? null : id,
      );
      expect(refused.entries.map((entry) => entry.actorId).reverse(), email).toEqual(named);
    }
  });

  it('session fixation: a session id chosen before sign-in is never adopted', async () => {
    for (const email of ['fix1@example.org', 'fix2@example.org', 'fix3@example.org']) {
      const { oneTimePassword } = await createUserWithPassword(platform, testActor, {
        email,
        name: email,
        role: 'researcher',
      });
      const planted = `planted-${randomUUID()}`;
      const signedIn = await app.inject({
        method: 'POST',
        url: '/api/v1/session',
        cookies: { [sessionCookie]: planted },
        payload: { email, password: oneTimePassword },
      });
      expect(signedIn.statusCode, signedIn.body).toBe(200);
      const issued = signedIn.cookies.find((cookie) => cookie.name === sessionCookie)?.value;
      expect(issued).toBeDefined();
      attempt('session fixation', issued === planted, `${email}: the planted id was kept`);
      const withPlanted = await call({ cookie: planted }, 'GET', '/api/v1/session');
      attempt('session fixation', ok(withPlanted), `${email}: the planted id signs in`);
    }
  });

  it('CSRF: changes sent with the session cookie alone, a wrong token, or another session’s token', async () => {
    const alice = await sessionOf('alice@example.org');
    const other = await sessionOf('mallory@example.org');
    const changes = [
      ['POST', '/api/v1/queries', spec],
      ['DELETE', `/api/v1/queries/${aliceQuery}`],
      ['POST', `/api/v1/queries/${aliceQuery}/exports`, { format: 'csv' }],
      ['POST', '/api/v1/me/tokens', { name: 'stolen', days: 30 }],
      ['POST', '/api/v1/saved-queries', { name: 'x', spec }],
      [
        'POST',
        '/api/v1/access-requests',
        { datasetId: 'synthea-observations', level: 'row', reason: 'x' },
      ],
      ['DELETE', '/api/v1/session'],
    ] as const;
    for (const [method, url, body] of changes) {
      for (const csrf of [undefined, 'x'.repeat(alice.csrf.length), other.csrf, `${alice.csrf}x`]) {
        const response = await call(
          { cookie: alice.cookie, ...(csrf ? { csrf } : {}) },
          method,
          url,
          body,
        );
        attempt('CSRF', ok(response), `${method} ${url} with ${csrf ? 'a wrong' : 'no'} token`);
      }
    }
    // A form post from another site: no JSON, no token.
    const form = await app.inject({
      method: 'POST',
      url: '/api/v1/me/tokens',
      cookies: { [sessionCookie]: alice.cookie },
      headers: {
        'content-type': 'application/x-www-form-urlencoded',
        origin: 'https://evil.example',
      },
      payload: 'name=stolen&days=30',
    });
    attempt('CSRF', ok(form), 'cross-site form post');
    expect((await call(alice, 'GET', '/api/v1/session')).statusCode).toBe(200);
  });

  it('token and session reuse after revocation, sign-out and disabling', async () => {
    const browser = await sessionOf('rowan@example.org');
    const made = await call(browser, 'POST', '/api/v1/me/tokens', { name: 'laptop', days: 7 });
    expect(made.statusCode).toBe(201);
    const { id, token } = made.json<{ id: string; token: string }>();
    expect((await call(browser, 'DELETE', `/api/v1/me/tokens/${id}`)).statusCode).toBe(204);
    const withRevoked = (method: 'GET' | 'POST', url: string, body?: unknown) =>
      app.inject({
        method,
        url,
        headers: { authorization: `Bearer ${token}` },
        ...(body ? { payload: body as object } : {}),
      });
    for (const [method, url, body] of [
      ['GET', '/api/v1/datasets'],
      ['GET', `/api/v1/queries`],
      ['POST', '/api/v1/queries', spec],
      ['GET', '/api/v1/datasets/synthea-observations/dictionary'],
    ] as const) {
      attempt(
        'revoked token or session',
        ok(await withRevoked(method, url, body)),
        `revoked token ${method} ${url}`,
      );
    }
    const signedOut = await sessionOf('rowan@example.org');
    expect((await call(signedOut, 'DELETE', '/api/v1/session')).statusCode).toBe(204);
    for (const url of ['/api/v1/session', '/api/v1/queries', '/api/v1/me/tokens']) {
      attempt(
        'revoked token or session',
        ok(await call(signedOut, 'GET', url)),
        `signed-out session ${url}`,
      );
    }
    tokens['leaver@example.org'] = (
      await userWithToken(platform, 'leaver@example.org', { name: 'Leaver' })
    ).token;
    const leaverSession = await sessionOf('leaver@example.org');
    await setUserDisabled(platform, testActor, { email: 'leaver@example.org', disabled: true });
    attempt(
      'revoked token or session',
      ok(await call('leaver@example.org', 'GET', '/api/v1/datasets')),
      'disabled user’s token',
    );
    attempt(
      'revoked token or session',
      ok(await call(leaverSession, 'GET', '/api/v1/session')),
      'disabled user’s session',
    );
  });

  it('privilege escalation through every admin and audit route, as researcher, steward and their sessions', async () => {
    const adminRoutes = Object.keys(routeRules).filter(
      (route) => / \/api\/v1\/(admin|audit)\//.test(route) || route.endsWith('/api/v1/audit'),
    );
    expect(adminRoutes.length).toBeGreaterThanOrEqual(20);
    const sessions = {
      researcher: await sessionOf('alice@example.org'),
      steward: await sessionOf('steward@example.org'),
    };
    const alice = (await usersRepository(platform.catalog.db).byEmail('alice@example.org'))!;
    const bodies: Record<string, unknown> = {
      'POST /api/v1/admin/users': { email: 'sneaky@example.org', name: 'Sneaky', role: 'admin' },
      'PATCH /api/v1/admin/users/:id': { role: 'admin' },
      'POST /api/v1/admin/grants': {
        email: 'alice@example.org',
        datasetId: 'synthea-observations',
        level: 'row',
      },
      'POST /api/v1/admin/hospitals': { id: 'mine', name: 'Mine' },
      'POST /api/v1/admin/projects': { name: 'mine' },
      'POST /api/v1/admin/access-requests/:id/decision': { approve: true },
    };
    for (const route of adminRoutes) {
      const [method, pattern] = route.split(' ') as [
        'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE',
        string,
      ];
      const url = pattern
        .replace(':id', alice.id)
        .replace(':userId', alice.id)
        .replace(':hospitalId', 'synthea');
      const body = bodies[route] ?? (method === 'GET' || method === 'DELETE' ? undefined : {});
      for (const who of [
        'alice@example.org',
        'rowan@example.org',
        'steward@example.org',
        sessions.researcher,
        sessions.steward,
      ]) {
        attempt(
          'privilege escalation',
          ok(await call(who, method, url, body)),
          `${typeof who === 'string' ? who : 'session'} ${route}`,
        );
      }
    }
    // A steward uploading for a hospital that is not theirs.
    const foreign = await app.inject({
      method: 'POST',
      url: '/api/uploads?dataset=synthea-observations&hospital=other&month=2020-12&fileName=x.csv',
      headers: {
        authorization: `Bearer ${tokens['steward@example.org']}`,
        'content-type': 'text/csv',
      },
      payload: await readFile(synthea('2020-12')),
    });
    attempt('privilege escalation', ok(foreign), 'upload for another hospital');
    // A researcher's token used to upload, and a query token used to make tokens.
    const asResearcher = await app.inject({
      method: 'POST',
      url: '/api/uploads?dataset=synthea-observations&hospital=synthea&month=2020-12&fileName=x.csv',
      headers: {
        authorization: `Bearer ${tokens['alice@example.org']}`,
        'content-type': 'text/csv',
      },
      payload: 'a,b\n1,2\n',
    });
    attempt('privilege escalation', ok(asResearcher), 'a researcher uploads');
    attempt(
      'privilege escalation',
      ok(await call('alice@example.org', 'POST', '/api/v1/me/tokens', { name: 'more', days: 30 })),
      'a token makes tokens',
    );
    // Nothing changed: alice is still an aggregate researcher, no admin was made.
    const after = (await usersRepository(platform.catalog.db).byEmail('alice@example.org'))!;
    expect(after.role).toBe('researcher');
    expect(
      await usersRepository(platform.catalog.db).byEmail('sneaky@example.org'),
    ).toBeUndefined();
  });

  it('an aggregate-only user after rows or small cells: row specs, exports, sorting, paging, histograms and overlapping queries', async () => {
    const threshold = (
      await call('alice@example.org', 'GET', `/api/v1/queries/${aliceQuery}`)
    ).json<{ summary: { threshold: number } }>().summary.threshold;
    expect(threshold).toBe(11);
    const pseudonymPattern = /\b[0-9A-Z]{16,}\b/;
    const small = (value: unknown) => typeof value === 'number' && value > 0 && value < threshold;
    const who = 'alice@example.org';
    /** A row that shows a count below the threshold, a small histogram bin or a pseudonym. */
    const leaks = (row: Record<string, unknown>) =>
      Object.entries(row).some(([name, value]) =>
        Array.isArray(value)
          ? value.some((bin: { count?: number | null }) => small(bin.count))
          : (['rows', 'patients'].includes(name) && small(value)) ||
            (typeof value === 'string' && pseudonymPattern.test(value)),
      );
    // Row-level output in every form the spec has.
    for (const rowSpec of [
      { dataset: 'synthea-observations', select: ['patient', 'code', 'value'] },
      { dataset: 'synthea-observations', select: ['code', 'value'], limit: 1 },
      {
        dataset: 'synthea-observations',
        groupBy: [{ column: 'patient' }],
        measures: [{ fn: 'count' }],
      },
      {
        dataset: 'synthea-observations',
        groupBy: [{ column: 'encounter' }],
        measures: [{ fn: 'count' }],
      },
      {
        dataset: 'synthea-observations',
        groupBy: [{ column: 'observed_at' }, { column: 'code' }, { column: 'value' }],
        measures: [{ fn: 'count' }],
      },
      { dataset: 'synthea-observations', measures: [{ fn: 'min', column: 'patient' }] },
    ]) {
      const response = await call(who, 'POST', '/api/v1/queries?wait=30', rowSpec);
      const rows = ok(response)
        ? (response.json<{ firstPage?: { rows: Array<Record<string, unknown>> } }>().firstPage
            ?.rows ?? [])
        : [];
      attempt('aggregate-only extraction', rows.some(leaks), JSON.stringify(rowSpec));
    }
    // Narrow groups, sorted smallest first, read page by page, and exported.
    const narrow = [
      {
        dataset: 'synthea-observations',
        groupBy: [
          { column: 'code' },
          { column: 'sex' },
          { column: 'age', bands: [1, 2, 3, 5, 8, 13, 21, 34, 55, 89] },
        ],
        measures: [
          { fn: 'count' },
          { fn: 'patients' },
          { fn: 'mean', column: 'value' },
          { fn: 'percentile', column: 'value', p: 0.5 },
        ],
      },
      {
        dataset: 'synthea-observations',
        groupBy: [{ column: 'code' }, { column: 'observed_at', bucket: 'day' }],
        measures: [{ fn: 'patients' }, { fn: 'percentile', column: 'value', p: 0.5 }],
      },
      {
        dataset: 'synthea-observations',
        groupBy: [{ column: 'code' }],
        measures: [{ fn: 'patients' }, { fn: 'histogram', column: 'value', binWidth: 0.5 }],
      },
    ];
    // The narrow queries must have had small groups to leave out, or the check proves nothing.
    let withheldSeen = 0;
    for (const query of narrow) {
      const submitted = await call(who, 'POST', '/api/v1/queries?wait=30', query);
      if (!ok(submitted)) {
        attempt('aggregate-only extraction', false, `refused: ${JSON.stringify(query)}`);
        continue;
      }
      const id = submitted.json<{ id: string }>().id;
      const job = (await call(who, 'GET', `/api/v1/queries/${id}?wait=30`)).json<{
        summary: { withheldGroups: number };
      }>();
      withheldSeen += job.summary.withheldGroups;
      for (const sort of ['patients:asc', 'rows:asc', 'patients:desc']) {
        const [column, direction] = sort.split(':');
        for (let page = 1; page <= 3; page += 1) {
          const response = await call(
            who,
            'GET',
            `/api/v1/queries/${id}/results?page=${page}&pageSize=50&sort=${column}&direction=${direction}`,
          );
          const rows = ok(response)
            ? response.json<{ rows: Array<Record<string, unknown>> }>().rows
            : [];
          const leaked = rows.some(leaks);
          attempt(
            'aggregate-only extraction',
            leaked,
            `${JSON.stringify(query.groupBy)} ${sort} page ${page}`,
          );
        }
      }
      const exported = await call(who, 'POST', `/api/v1/queries/${id}/exports`, { format: 'csv' });
      if (ok(exported)) {
        const link = new URL(exported.json<{ url: string }>().url, 'http://medlake.test');
        const csv = (await call(undefined, 'GET', `${link.pathname}${link.search}`)).body;
        const [header, ...lines] = csv.trimEnd().split('\n');
        const countColumns = header!
          .split(',')
          .flatMap((name, index) => (['rows', 'patients'].includes(name) ? [index] : []));
        const leaked = lines.some((line) =>
          countColumns.some((index) => small(Number(line.split(',')[index]))),
        );
        attempt(
          'aggregate-only extraction',
          leaked || pseudonymPattern.test(csv),
          `export of ${JSON.stringify(query.groupBy)}`,
        );
      }
    }
    expect(withheldSeen).toBeGreaterThan(0);
    // Overlapping queries within one result: the total less the published groups.
    const byCode = await call(who, 'POST', '/api/v1/queries?wait=30', {
      dataset: 'synthea-observations',
      groupBy: [{ column: 'code' }],
      measures: [{ fn: 'count' }],
    });
    const result = byCode.json<{ id: string }>();
    const page = (
      await call(who, 'GET', `/api/v1/queries/${result.id}/results?page=1&pageSize=1000`)
    ).json<{
      rows: Array<{ rows: number | null; suppressed: boolean }>;
      total?: { rows: number | null };
    }>();
    const summary = (await call(who, 'GET', `/api/v1/queries/${result.id}`)).json<{
      summary: { matching: { rows: number | string }; withheldGroups: number };
    }>().summary;
    expect(summary.withheldGroups).toBeGreaterThan(0);
    expect(typeof summary.matching.rows).toBe('number');
    const published = page.rows.reduce((sum, row) => sum + (row.rows ?? 0), 0);
    // The total covers the groups shown: what the withheld groups hold is not there to subtract.
    attempt(
      'aggregate-only extraction',
      Number(summary.matching.rows) - published !== 0,
      'the matching total less the published groups',
    );
  });
});
