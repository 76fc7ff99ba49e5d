import type { QueryJobView } from '@medlake/shared';
import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { userWithToken } from '../../test/api-helpers.ts';
import { catalogBackends } from '../../test/catalog-backends.ts';
import {
  createTestApp,
  createTestPlatform,
  testActor,
  type TestPlatform,
} from '../../test/helper.ts';
import { ingest, prepareDataset, synthea } from '../../test/ingest-helpers.ts';
import type { App } from '../app.ts';
import { grantsRepository } from '../catalog/grants-repository.ts';
import { usersRepository, type User } from '../catalog/users-repository.ts';
import { createLogger } from '../logger.ts';
import { createProject, setProjectMember } from '../use-cases/access/projects.ts';
import { setUserDisabled } from '../use-cases/accounts/manage-users.ts';
import { createApiToken, grantDatasetAccess, revokeGrant } from '../use-cases/manage-access.ts';
import { startQueryWorker, type QueryWorker } from '../use-cases/queries/query-worker.ts';
import { submitQuery } from '../use-cases/queries/submit-query.ts';

/**
 * Attacks on the facts a query reads before its engine starts (the token's user, the dataset
 * with the user's grants, the releases), which a server that owns its catalog (PGlite) holds in
 * memory (catalog/held-reads.ts): each takes away access the moment before a query, and the
 * query must answer as the catalog says now, never from what was held. Each first shows the
 * facts held (a second query reads nothing of them), so that the attack is on the held path.
 */

const dataset = 'synthea-observations';
const spec = { dataset, measures: [{ fn: 'count' }, { fn: 'patients' }] };
const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

describe.each(catalogBackends())(
  'no access after it is taken away, with facts held, on %s',
  (kind) => {
    let platform: TestPlatform;
    let app: App;
    let worker: QueryWorker;
    let users = 0;

    beforeAll(async () => {
      platform = await createTestPlatform(kind);
      await prepareDataset(platform, dataset, ['synthea', 'evil', 'gone']);
      await ingest(platform, { file: synthea('all'), month: '2021-06' });
      await ingest(platform, { file: synthea('all'), month: '2021-06', hospital: 'evil' });
      await ingest(platform, { file: synthea('all'), month: '2021-06', hospital: 'gone' });
      worker = startQueryWorker(platform, { logger: createLogger('silent'), pollMs: 50 });
      await worker.ready;
      app = await createTestApp(platform);
    }, 180_000);

    afterAll(async () => {
      await app?.close();
      await worker?.stop();
      await platform?.dispose();
    });

    /** A new researcher, with an aggregate grant on the dataset unless told otherwise. */
    async function researcher(
      grant: { hospitals?: string[]; none?: boolean } = {},
    ): Promise<{ user: User; token: string; tokenId: string; email: string }> {
      users += 1;
      const email = `held-${users}@example.org`;
      const { user } = await userWithToken(platform, email);
      if (!grant.none) {
        await grantDatasetAccess(platform, testActor, {
          email,
          datasetId: dataset,
          level: 'aggregate',
          ...(grant.hospitals ? { hospitals: grant.hospitals } : {}),
        });
      }
      const made = await createApiToken(platform, testActor, { email, name: 'held', days: 1 });
      return { user, token: made.token, tokenId: made.id, email };
    }

    const query = (token: string, body: object = spec) =>
      app.inject({
        method: 'POST',
        url: '/api/v1/queries?wait=20',
        headers: { authorization: `Bearer ${token}` },
        payload: body,
      });

    /**
     * Queries that succeed, the last reading nothing of the held facts (on PGlite). The first
     * records the token's use (a write to its table, once a minute), so it is read again once.
     */
    async function answeredFromHeld(token: string, body: object = spec): Promise<QueryJobView> {
      for (let warm = 0; warm < 2; warm += 1) {
        const first = await query(token, body);
        expect(first.statusCode, first.body).toBe(200);
      }
      const loads = platform.catalog.held?.loads;
      const second = await query(token, body);
      expect(second.statusCode, second.body).toBe(200);
      expect(platform.catalog.held?.loads).toBe(loads);
      const job = second.json<QueryJobView>();
      expect(job.status).toBe('succeeded');
      return job;
    }

    async function activeGrants(userId: string) {
      return grantsRepository(platform.catalog.db).active(userId, dataset, new Date());
    }

    it('refuses the query right after its grant is revoked', async () => {
      const { user, token } = await researcher();
      await answeredFromHeld(token);
      for (const grant of await activeGrants(user.id)) {
        await revokeGrant(platform, testActor, grant.id);
      }
      const refused = await query(token);
      expect(refused.statusCode).toBe(403);
      expect(refused.json<{ error: { code: string } }>().error.code).toBe('grant_revoked');
    });

    it('refuses the query right after the user is disabled', async () => {
      const { token, email } = await researcher();
      await answeredFromHeld(token);
      await setUserDisabled(platform, testActor, { email, disabled: true });
      expect((await query(token)).statusCode).toBe(401);
      // And lets them in again once enabled: the held fact does not outlive that either.
      await setUserDisabled(platform, testActor, { email, disabled: false });
      expect((await query(token)).statusCode).toBe(200);
    });

    it('refuses the query right after its token is revoked', async () => {
      const { user, token, tokenId } = await researcher();
      await answeredFromHeld(token);
      await usersRepository(platform.catalog.db).revokeToken(user.id, tokenId, new Date());
      expect((await query(token)).statusCode).toBe(401);
    });

    it('refuses the query the moment its token expires, with nothing written', async () => {
      const { token, tokenId } = await researcher();
      const expiresAt = new Date(Date.now() + 1500);
      await platform.catalog.db
        .updateTable('api_tokens')
        .set({ expires_at: expiresAt })
        .where('id', '=', tokenId)
        .execute();
      await answeredFromHeld(token);
      await sleep(Math.max(0, expiresAt.getTime() - Date.now()) + 50);
      expect((await query(token)).statusCode).toBe(401);
    });

    it('refuses the query the moment its grant expires, with nothing written', async () => {
      const { user, token } = await researcher();
      const expiresAt = new Date(Date.now() + 1500);
      await platform.catalog.db
        .updateTable('dataset_grants')
        .set({ expires_at: expiresAt })
        .where('user_id', '=', user.id)
        .execute();
      await answeredFromHeld(token);
      await sleep(Math.max(0, expiresAt.getTime() - Date.now()) + 50);
      const refused = await query(token);
      expect(refused.statusCode).toBe(403);
      expect(refused.json<{ error: { code: string } }>().error.code).toBe('grant_expired');
    });

    it('reads no release of a hospital right after it is taken out of the grant', async () => {
      const { user, token, email } = await researcher({ hospitals: ['synthea', 'evil'] });
      const before = await answeredFromHeld(token);
      expect(before.summary?.releases.hospitals).toEqual(['evil', 'synthea']);
      for (const grant of await activeGrants(user.id)) {
        await revokeGrant(platform, testActor, grant.id);
      }
      await grantDatasetAccess(platform, testActor, {
        email,
        datasetId: dataset,
        level: 'aggregate',
        hospitals: ['synthea'],
      });
      const after = await query(token);
      expect(after.statusCode, after.body).toBe(200);
      expect(after.json<QueryJobView>().summary?.releases.hospitals).toEqual(['synthea']);
      // Naming the hospital does not reach it either.
      const named = await query(token, {
        ...spec,
        where: { column: 'hospital', op: 'eq', value: 'evil' },
      });
      expect(named.json<QueryJobView>().summary?.releases.count ?? 0).toBe(0);
    });

    it('refuses the query right after the user leaves the project whose grant they held', async () => {
      const { token, email } = await researcher({ none: true });
      await createProject(platform, testActor, { id: `held-${users}`, name: 'Held' });
      await setProjectMember(platform, testActor, {
        projectId: `held-${users}`,
        email,
        member: true,
      });
      await grantDatasetAccess(platform, testActor, {
        projectId: `held-${users}`,
        datasetId: dataset,
        level: 'aggregate',
      });
      await answeredFromHeld(token);
      await setProjectMember(platform, testActor, {
        projectId: `held-${users}`,
        email,
        member: false,
      });
      expect((await query(token)).statusCode).toBe(403);
    });

    it('keeps answering from memory after a submit refused for a full queue rolls back', async () => {
      const { user, token } = await researcher();
      await answeredFromHeld(token);
      const loads = platform.catalog.held?.loads;
      const full = { ...platform, env: { ...platform.env, MEDLAKE_QUERY_QUEUE_PER_USER: 0 } };
      await expect(submitQuery(full, { user, source: 'test' }, spec)).rejects.toMatchObject({
        code: 'queue_full',
      });
      // The refused submit's transaction wrote only the queue: nothing held is read again.
      const after = await query(token);
      expect(after.statusCode, after.body).toBe(200);
      expect(platform.catalog.held?.loads).toBe(loads);
    });

    it('reads no release right after it is deleted', async () => {
      const { token } = await researcher();
      const before = await answeredFromHeld(token);
      expect(before.summary?.releases.hospitals).toContain('gone');
      await platform.catalog.db.transaction().execute(async (trx) => {
        await sql`delete from current_releases where hospital_id = 'gone'`.execute(trx);
        await sql`delete from releases where hospital_id = 'gone'`.execute(trx);
      });
      const after = await query(token);
      expect(after.statusCode, after.body).toBe(200);
      expect(after.json<QueryJobView>().summary?.releases.hospitals).toEqual(['evil', 'synthea']);
    });
  },
);
