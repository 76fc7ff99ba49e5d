import type { GrantView } from '@medlake/shared';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { callWithTokens, userWithToken } from '../../../test/api-helpers.ts';
import {
  createTestApp,
  createTestPlatform,
  testActor,
  type TestPlatform,
} from '../../../test/helper.ts';
import { ingest, prepareDataset, synthea } from '../../../test/ingest-helpers.ts';
import { runQuery } from '../../../test/query-helpers.ts';
import type { App } from '../../app.ts';
import type { AuditEntry } from '../../audit/audit-log.ts';
import type { User } from '../../catalog/users-repository.ts';
import { sessionCookie } from '../../http/authenticate.ts';
import type { StorageKind } from '../../storage/object-store.ts';
import { createProject } from '../../use-cases/access/projects.ts';
import { openSession } from '../../use-cases/accounts/sign-in.ts';
import { grantDatasetAccess } from '../../use-cases/manage-access.ts';

const stores: Array<[string, StorageKind]> = [
  ['local disk', 'local'],
  ['S3', 's3'],
];

const aggregate = {
  dataset: 'synthea-observations',
  groupBy: [{ column: 'sex' }],
  measures: [{ fn: 'patients' }],
};

type Credential = { token: string } | { cookie: string } | undefined;

/**
 * A download link does not outlive the access it was made under: each use checks its owner's
 * access now, by the rule queries follow, and is audited under who used it. On S3 the server's
 * link redirects to a presigned URL made for that use, short-lived.
 */
describe.each(stores)('download links, exports on %s', (_, storage) => {
  let platform: TestPlatform;
  let app: App;
  const users: Record<string, User> = {};
  const tokens: Record<string, string> = {};

  const as = (who: string): Credential => ({ token: tokens[who]! });
  const call = callWithTokens(() => app, tokens);

  /** Uses a link as the credential says (none: anonymous), following S3's redirect. */
  const use = async (url: string, credential: Credential) => {
    const response = await app.inject({
      method: 'GET',
      url,
      headers:
        credential && 'token' in credential ? { authorization: `Bearer ${credential.token}` } : {},
      cookies: credential && 'cookie' in credential ? { [sessionCookie]: credential.cookie } : {},
    });
    if (response.statusCode !== 303) {
      return { status: response.statusCode, body: response.body, presigned: undefined };
    }
    expect(storage).toBe('s3');
    expect(response.headers['cache-control']).toBe('private, no-store');
    const presigned = new URL(response.headers.location as string);
    const fetched = await fetch(presigned);
    return { status: fetched.status, body: await fetched.text(), presigned };
  };

  /** Runs a query as the user and exports its result; the link the API hands out. */
  const exported = async (who: string, spec: unknown, format: 'csv' | 'parquet' = 'csv') => {
    const { job } = await runQuery(platform, users[who]!, spec);
    expect(job.status).toBe('succeeded');
    const created = await call(who, 'POST', `/api/v1/queries/${job.id}/exports`, { format });
    expect(created.statusCode, created.body).toBe(201);
    return created.json<{ exportId: string; url: string; expiresAt: string }>();
  };

  /** The audit log's entries for the export's downloads, oldest first. */
  const downloadsOf = async (exportId: string): Promise<AuditEntry[]> =>
    (
      await platform.audit.search(
        { action: 'download', target: `export:${exportId}` },
        { page: 1, pageSize: 100 },
      )
    ).entries.reverse();

  const grantOf = async (who: string) => {
    const listed = await call('admin', 'GET', `/api/v1/admin/grants?userId=${users[who]!.id}`);
    return listed.json<{ grants: GrantView[] }>().grants;
  };

  beforeAll(async () => {
    platform = await createTestPlatform('pglite', {}, { storage });
    await prepareDataset(platform, 'synthea-observations', ['synthea', 'other']);
    expect((await ingest(platform, { file: synthea('2020-12'), month: '2020-12' })).status).toBe(
      'published',
    );
    for (const [name, role, level] of [
      ['admin', 'admin', null],
      ['olga', 'researcher', 'aggregate'],
      ['bob', 'researcher', null],
      ['pia', 'researcher', null],
      ['ron', 'researcher', 'row'],
      ['dee', 'researcher', 'aggregate'],
      ['tess', 'researcher', 'aggregate'],
      ['hana', 'researcher', 'aggregate'],
    ] as const) {
      const grant = level ? { datasetId: 'synthea-observations', level } : undefined;
      const added = await userWithToken(platform, `${name}@example.org`, { role, name, grant });
      users[name] = added.user;
      tokens[name] = added.token;
    }
    await createProject(platform, testActor, { id: 'cardio-2026', name: 'Cardio' });
    await grantDatasetAccess(platform, testActor, {
      projectId: 'cardio-2026',
      datasetId: 'synthea-observations',
      level: 'aggregate',
    });
    app = await createTestApp(platform);
    const member = await call(
      'admin',
      'PUT',
      `/api/v1/admin/projects/cardio-2026/members/${users.pia!.id}`,
    );
    expect(member.statusCode, member.body).toBe(200);
  }, 120_000);

  afterAll(async () => {
    await app?.close();
    await platform?.dispose();
  });

  it('audits each use under who used it, and a revoked grant refuses the same link at once', async () => {
    const link = await exported('olga', aggregate);
    const session = await openSession(
      platform,
      users.olga!,
      'password',
      { source: 'test' },
      new Date(),
    );

    const uses: Array<[string, Credential]> = [
      ['owner with a token', as('olga')],
      ['owner in a browser', { cookie: session.token }],
      ['another user with the link', as('bob')],
      ['anonymous', undefined],
      ['an ended token', { token: 'mlk_not-a-token' }],
    ];
    for (const [what, credential] of uses) {
      const used = await use(link.url, credential);
      expect(used.status, what).toBe(200);
      expect(used.body.split('\n')[0], what).toBe('sex,patients,suppressed');
      if (storage === 's3') {
        // A presigned URL made for this use, at most the presign lifetime (5 minutes).
        expect(used.presigned?.host).toBe(new URL(platform.env.MEDLAKE_S3_ENDPOINT!).host);
        expect(Number(used.presigned?.searchParams.get('X-Amz-Expires'))).toBe(
          platform.env.MEDLAKE_DOWNLOAD_PRESIGN_TTL_SECONDS,
        );
        expect(platform.env.MEDLAKE_DOWNLOAD_PRESIGN_TTL_SECONDS).toBe(300);
      }
    }
    const granted = await downloadsOf(link.exportId);
    expect(
      granted.map((entry) => [
        entry.outcome,
        entry.actorId,
        entry.actor,
        entry.details.usedBy,
        entry.details.credential ?? null,
        entry.details.owner,
      ]),
    ).toEqual([
      ['success', users.olga!.id, 'olga@example.org', 'the owner', 'token', users.olga!.id],
      ['success', users.olga!.id, 'olga@example.org', 'the owner', 'session', users.olga!.id],
      ['success', users.bob!.id, 'bob@example.org', 'another user', 'token', users.olga!.id],
      [
        'success',
        null,
        'anonymous, with the link',
        'anonymous, with the link',
        null,
        users.olga!.id,
      ],
      [
        'success',
        null,
        'anonymous, with the link',
        'anonymous, with the link',
        'unrecognised',
        users.olga!.id,
      ],
    ]);
    if (storage === 's3') {
      for (const entry of granted) expect(entry.details.presignedUntil).toEqual(expect.any(String));
    }

    // The admin revokes Olga's grant, as in the admin pages.
    const [grant] = await grantOf('olga');
    expect((await call('admin', 'DELETE', `/api/v1/admin/grants/${grant!.id}`)).statusCode).toBe(
      200,
    );
    for (const [what, credential] of uses) {
      const refused = await app.inject({
        method: 'GET',
        url: link.url,
        headers:
          credential && 'token' in credential
            ? { authorization: `Bearer ${credential.token}` }
            : {},
        cookies: credential && 'cookie' in credential ? { [sessionCookie]: credential.cookie } : {},
      });
      expect(refused.statusCode, what).toBe(403);
      expect(refused.headers.location).toBeUndefined();
      expect(refused.json().error.message).toBe(
        'This download link no longer works: the access it was made under has ended (the grant was revoked or expired, the project membership removed, or the account disabled). Ask an administrator for access, then export again.',
      );
    }
    const after = (await downloadsOf(link.exportId)).slice(granted.length);
    expect(
      after.map((entry) => [entry.outcome, entry.actorId, entry.actor, entry.details.reason]),
    ).toEqual([
      ['denied', users.olga!.id, 'olga@example.org', 'access ended'],
      ['denied', users.olga!.id, 'olga@example.org', 'access ended'],
      ['denied', users.bob!.id, 'bob@example.org', 'access ended'],
      ['denied', null, 'anonymous, with the link', 'access ended'],
      ['denied', null, 'anonymous, with the link', 'access ended'],
    ]);
    // Recorded once each, as downloads: not again as a generic refusal of the route.
    const generic = await platform.audit.search(
      { action: 'access.denied', target: 'route:GET /api/v1/downloads/:id' },
      { page: 1, pageSize: 10 },
    );
    expect(generic.total).toBe(0);
    // No signature in the log.
    const signature = new URL(link.url, 'http://medlake.test').searchParams.get('signature')!;
    expect(JSON.stringify(await downloadsOf(link.exportId))).not.toContain(signature);
  });

  it('ends a link when its owner leaves the project, is disabled or loses row access, or the grant expires', async () => {
    const refusedWith = async (url: string, message: RegExp) => {
      const response = await app.inject({ method: 'GET', url });
      expect(response.statusCode).toBe(403);
      expect(response.json().error.message).toMatch(message);
    };

    // Through a project: removing the member ends her links.
    const projectLink = await exported('pia', aggregate);
    expect((await use(projectLink.url, undefined)).status).toBe(200);
    const removed = await call(
      'admin',
      'DELETE',
      `/api/v1/admin/projects/cardio-2026/members/${users.pia!.id}`,
    );
    expect(removed.statusCode, removed.body).toBe(200);
    await refusedWith(projectLink.url, /access it was made under has ended/);

    // Row level: an export of rows needs row access still; an aggregate grant is not enough.
    const rowsLink = await exported('ron', {
      dataset: 'synthea-observations',
      select: ['code', 'value'],
      limit: 5,
    });
    expect((await use(rowsLink.url, undefined)).status).toBe(200);
    const added = await call('admin', 'POST', '/api/v1/admin/grants', {
      userId: users.ron!.id,
      datasetId: 'synthea-observations',
      level: 'aggregate',
    });
    expect(added.statusCode, added.body).toBe(201);
    const rowGrant = (await grantOf('ron')).find((grant) => grant.level === 'row')!;
    expect((await call('admin', 'DELETE', `/api/v1/admin/grants/${rowGrant.id}`)).statusCode).toBe(
      200,
    );
    await refusedWith(rowsLink.url, /made under row access, which the link’s owner no longer has/);

    // Hospitals: a grant narrowed to another hospital does not cover an export of this one's.
    const hanaLink = await exported('hana', aggregate);
    expect((await use(hanaLink.url, undefined)).status).toBe(200);
    // One grant per user, dataset and level: the wide one goes before the narrow one comes.
    const wide = (await grantOf('hana')).find((grant) => grant.hospitals === null)!;
    expect((await call('admin', 'DELETE', `/api/v1/admin/grants/${wide.id}`)).statusCode).toBe(200);
    const narrowed = await call('admin', 'POST', '/api/v1/admin/grants', {
      userId: users.hana!.id,
      datasetId: 'synthea-observations',
      level: 'aggregate',
      hospitals: ['other'],
    });
    expect(narrowed.statusCode, narrowed.body).toBe(201);
    await refusedWith(hanaLink.url, /data of a hospital the link’s owner no longer has access to/);

    // A disabled owner.
    const deeLink = await exported('dee', aggregate);
    expect((await use(deeLink.url, as('dee'))).status).toBe(200);
    const disabled = await call('admin', 'PATCH', `/api/v1/admin/users/${users.dee!.id}`, {
      disabled: true,
    });
    expect(disabled.statusCode, disabled.body).toBe(200);
    await refusedWith(deeLink.url, /access it was made under has ended/);

    // A grant that expires on its own, without anyone acting.
    const bobGrant = await call('admin', 'POST', '/api/v1/admin/grants', {
      userId: users.bob!.id,
      datasetId: 'synthea-observations',
      level: 'aggregate',
    });
    expect(bobGrant.statusCode).toBe(201);
    const bobLink = await exported('bob', aggregate);
    expect((await use(bobLink.url, undefined)).status).toBe(200);
    await platform.catalog.db
      .updateTable('dataset_grants')
      .set({ expires_at: new Date(Date.now() - 1000) })
      .where('id', '=', bobGrant.json<GrantView>().id)
      .execute();
    await refusedWith(bobLink.url, /access it was made under has ended/);

    for (const link of [projectLink, rowsLink, hanaLink, deeLink, bobLink]) {
      const outcomes = (await downloadsOf(link.exportId)).map((entry) => [
        entry.outcome,
        entry.details.reason ?? null,
      ]);
      expect(outcomes).toEqual([
        ['success', null],
        ['denied', 'access ended'],
      ]);
    }
  });

  it('audits tampered and expired links as refused downloads, naming who tried', async () => {
    const link = await exported('tess', aggregate);
    const url = new URL(link.url, 'http://medlake.test');
    const tampered = new URL(url);
    tampered.searchParams.set('expires', String(Math.floor(Date.now() / 1000) + 86_400));
    const response = await app.inject({
      method: 'GET',
      url: `${tampered.pathname}${tampered.search}`,
      headers: { authorization: `Bearer ${tokens.bob}` },
    });
    expect(response.statusCode).toBe(403);
    expect(response.json().error.message).toBe('The download link is not valid');

    const old = platform.downloads.create(
      { exportId: link.exportId, userId: users.tess!.id },
      new Date(Date.now() - 3_600_000),
    );
    const expired = await app.inject({ method: 'GET', url: old.url });
    expect(expired.statusCode).toBe(403);
    expect(expired.json().error.message).toMatch(/expired/);

    const entries = await downloadsOf(link.exportId);
    expect(
      entries.map((entry) => [
        entry.outcome,
        entry.actor,
        entry.details.reason,
        entry.details.owner ?? null,
      ]),
    ).toEqual([
      ['denied', 'bob@example.org', 'tampered', null],
      // The signature holds on an expired link, so its owner is known.
      ['denied', 'anonymous, with the link', 'expired', users.tess!.id],
    ]);
  });
});
