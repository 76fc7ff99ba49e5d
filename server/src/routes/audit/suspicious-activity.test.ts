import { randomUUID } from 'node:crypto';
import type { AuditPage, SuspiciousActivity } from '@medlake/shared';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { callWithTokens, tokensWithRoles } from '../../../test/api-helpers.ts';
import { createTestApp, createTestPlatform, type TestPlatform } from '../../../test/helper.ts';
import { prepareDataset } from '../../../test/ingest-helpers.ts';
import type { App } from '../../app.ts';
import { usersRepository } from '../../catalog/users-repository.ts';
import { grantDatasetAccess } from '../../use-cases/manage-access.ts';

describe('probes on record, and the suspicious-activity page', () => {
  let platform: TestPlatform;
  let app: App;
  const tokens: Record<string, string> = {};

  const call = callWithTokens(() => app, tokens);

  beforeAll(async () => {
    platform = await createTestPlatform();
    await prepareDataset(platform, 'synthea-observations');
    Object.assign(
      tokens,
      await tokensWithRoles(platform, {
        auditor: 'auditor',
        mallory: 'researcher',
        quiet: 'researcher',
      }),
    );
    app = await createTestApp(platform);
  });
  afterAll(async () => {
    await app.close();
    await platform.dispose();
  });

  it('sums a flood of probes into one entry per user and window, and names the prober', async () => {
    // Other users' query ids guessed, injected specs, and a page that is not theirs.
    for (let i = 0; i < 40; i += 1) {
      expect((await call('mallory', 'GET', `/api/v1/queries/${randomUUID()}`)).statusCode).toBe(
        404,
      );
    }
    for (const column of ["code'; drop table users; --", 'code" or 1=1']) {
      const refused = await call('mallory', 'POST', '/api/v1/queries', {
        dataset: 'synthea-observations',
        groupBy: [{ column }],
        measures: [{ fn: 'count' }],
      });
      expect(refused.statusCode).toBe(400);
    }
    expect((await call('mallory', 'GET', '/api/v1/audit')).statusCode).toBe(403);
    // An ordinary user's ordinary day leaves no probe.
    expect((await call('quiet', 'GET', '/api/v1/datasets')).statusCode).toBe(200);

    await app.probes.flush();
    const probes = await platform.audit.search(
      { action: 'access.probe' },
      { page: 1, pageSize: 10 },
    );
    expect(probes.entries).toHaveLength(1);
    expect(probes.entries[0]).toMatchObject({
      actor: 'mallory@example.org',
      outcome: 'denied',
      details: {
        notFound: 40,
        invalid: 2,
        refused: 1,
        routes: {
          'GET /api/v1/queries/:id': 40,
          'POST /api/v1/queries': 2,
          'GET /api/v1/audit': 1,
        },
      },
    });

    const page = await call('auditor', 'GET', '/api/v1/audit/suspicious');
    expect(page.statusCode).toBe(200);
    const { suspects } = page.json<SuspiciousActivity>();
    expect(suspects).toEqual([
      expect.objectContaining({
        who: 'mallory@example.org',
        notFound: 40,
        invalid: 2,
        refused: 1,
        total: 43,
        windows: 1,
        sources: ['127.0.0.1'],
      }),
    ]);
    // The researcher may not look.
    expect((await call('mallory', 'GET', '/api/v1/audit/suspicious')).statusCode).toBe(403);
  });

  it('names who and what an entry is about when the log is read, not bare ids', async () => {
    const quiet = await usersRepository(platform.catalog.db).byEmail('quiet@example.org');
    const grant = await grantDatasetAccess(
      platform,
      { userId: null, name: 'test setup', source: 'test' },
      { email: 'quiet@example.org', datasetId: 'synthea-observations', level: 'aggregate' },
    );
    const page = (
      await call('auditor', 'GET', '/api/v1/audit?action=grant.add&pageSize=5')
    ).json<AuditPage>();
    const entry = page.entries.find((item) => item.target === `grant:${grant.id}`);
    expect(entry).toMatchObject({
      targetLabel: 'aggregate grant of Observations (Synthea export) to quiet@example.org',
      names: { [quiet!.id]: 'quiet@example.org' },
    });
    const own = (
      await call('auditor', 'GET', '/api/v1/audit?action=audit.read&pageSize=1')
    ).json<AuditPage>();
    expect(own.entries[0]).toMatchObject({ actorNow: 'auditor@example.org' });
  });
});
