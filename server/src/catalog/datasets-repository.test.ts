import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  catalogBackends,
  createLabResultsCatalog,
  type TestCatalog,
} from '../../test/catalog-backends.ts';
import { datasetsRepository } from './datasets-repository.ts';
import { grantsRepository, type Grant } from './grants-repository.ts';
import { projectsRepository } from './projects-repository.ts';
import { usersRepository } from './users-repository.ts';

describe.each(catalogBackends())('a dataset with the grants a user holds on it, on %s', (kind) => {
  let catalog: TestCatalog;

  beforeEach(async () => {
    catalog = await createLabResultsCatalog(kind, { alsoAs: ['other'] });
  });

  afterEach(async () => {
    await catalog.dispose();
  });

  it('finds in one read the grants that grantsRepository.active finds, and no others', async () => {
    const users = usersRepository(catalog.db);
    const grants = grantsRepository(catalog.db);
    const ada = await users.create({ email: 'ada@example.org', name: 'Ada', role: 'researcher' });
    const bob = await users.create({ email: 'bob@example.org', name: 'Bob', role: 'researcher' });
    const eve = await users.create({ email: 'eve@example.org', name: 'Eve', role: 'researcher' });
    const projects = projectsRepository(catalog.db);
    await projects.create({ id: 'cardio', name: 'Cardio', description: '' });
    await projects.addMember('cardio', ada.id);
    const now = new Date();
    const grant = (fields: Partial<Omit<Grant, 'id' | 'createdAt' | 'revokedAt'>>) =>
      grants.add({
        datasetId: 'lab-results',
        userId: null,
        projectId: null,
        level: 'aggregate',
        hospitals: null,
        expiresAt: null,
        ...fields,
      });
    // Ada's own, one for her project, one revoked, one that expired, one on another dataset;
    // Bob's own. Eve has none.
    await grant({ userId: ada.id, hospitals: ['h01', 'h02'], expiresAt: new Date(+now + 3.6e6) });
    await grant({ projectId: 'cardio', level: 'row' });
    const revoked = await grant({ userId: ada.id, level: 'row' });
    await catalog.db
      .updateTable('dataset_grants')
      .set({ revoked_at: now })
      .where('id', '=', revoked.id)
      .execute();
    await grant({ userId: ada.id, level: 'row', expiresAt: new Date(+now - 1000) });
    await grant({ userId: ada.id, datasetId: 'other' });
    await grant({ userId: bob.id });

    const byId = (list: readonly Grant[]) => [...list].sort((a, b) => a.id.localeCompare(b.id));
    const datasets = datasetsRepository(catalog.db);
    for (const user of [ada, bob, eve]) {
      const found = await datasets.getWithActiveGrants('lab-results', user.id, now);
      expect(found?.dataset).toEqual(await datasets.get('lab-results'));
      expect(byId(found!.grants)).toEqual(byId(await grants.active(user.id, 'lab-results', now)));
    }
    const ofAda = await datasets.getWithActiveGrants('lab-results', ada.id, now);
    expect(ofAda!.grants.map((g) => [g.level, g.hospitals, g.projectId]).sort()).toEqual([
      ['aggregate', ['h01', 'h02'], null],
      ['row', null, 'cardio'],
    ]);
    expect((await datasets.getWithActiveGrants('lab-results', eve.id, now))!.grants).toEqual([]);
    expect(await datasets.getWithActiveGrants('missing', ada.id, now)).toBeUndefined();
  });
});
