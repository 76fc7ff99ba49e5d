import { randomUUID } from 'node:crypto';
import type { Kysely } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestPlatform, testActor, type TestPlatform } from '../../../test/helper.ts';
import { prepareDataset } from '../../../test/ingest-helpers.ts';
import { addUser } from '../../use-cases/manage-access.ts';
import { down, up } from './2026-12-06a-one-grant-per-holder.ts';

describe('migration: one grant in force per holder, dataset and level', () => {
  let platform: TestPlatform;
  let db: Kysely<unknown>;

  beforeAll(async () => {
    platform = await createTestPlatform();
    await prepareDataset(platform, 'synthea-observations');
    db = platform.catalog.db as unknown as Kysely<unknown>;
  });
  afterAll(() => platform.dispose());

  it('merges doubled grants into the oldest, keeping every hospital and the latest end', async () => {
    await down(db);
    const user = await addUser(platform, testActor, {
      email: 'twice@example.org',
      name: 'twice',
      role: 'researcher',
    });
    const grant = (at: string, hospitals: string[] | null, expires: string | null) => ({
      id: randomUUID(),
      dataset_id: 'synthea-observations',
      user_id: user.id,
      project_id: null,
      level: 'row' as const,
      hospitals: hospitals && JSON.stringify(hospitals),
      expires_at: expires ? new Date(expires) : null,
      created_at: new Date(at),
    });
    const oldest = grant('2026-01-01', ['b'], '2027-01-01');
    const second = grant('2026-02-01', ['a', 'b'], '2028-01-01');
    const aggregate = { ...grant('2026-03-01', ['c'], null), level: 'aggregate' as const };
    await platform.catalog.db
      .insertInto('dataset_grants')
      .values([oldest, second, aggregate])
      .execute();

    await up(db);
    const rows = await platform.catalog.db
      .selectFrom('dataset_grants')
      .selectAll()
      .where('user_id', '=', user.id)
      .orderBy('created_at')
      .execute();
    expect(
      rows.map((row) => [row.id, row.hospitals, row.expires_at, row.revoked_at !== null]),
    ).toEqual([
      [oldest.id, ['a', 'b'], new Date('2028-01-01'), false],
      [second.id, ['a', 'b'], new Date('2028-01-01'), true],
      [aggregate.id, ['c'], null, false],
    ]);
    await expect(
      platform.catalog.db
        .insertInto('dataset_grants')
        .values(grant('2026-04-01', null, null))
        .execute(),
    ).rejects.toThrow();
  });
});
