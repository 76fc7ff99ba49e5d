import { readFile } from 'node:fs/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestPlatform, testActor, type TestPlatform } from '../../../test/helper.ts';
import { contractFile } from '../../../test/ingest-helpers.ts';
import { addUser, grantDatasetAccess, revokeGrant } from '../manage-access.ts';
import { saveDataset } from '../manage-datasets.ts';
import { requireDatasetAccess } from './dataset-access.ts';

describe('a refused user is told why their access stopped', () => {
  let platform: TestPlatform;
  let datasetId: string;

  beforeAll(async () => {
    platform = await createTestPlatform();
    const contract = JSON.parse(await readFile(contractFile('lab-results'), 'utf8'));
    datasetId = (await saveDataset(platform, contract)).id;
  });

  afterAll(async () => {
    await platform.dispose();
  });

  const researcher = (email: string) =>
    addUser(platform, testActor, { email, name: email, role: 'researcher' });

  it('says no_dataset_access where no grant was ever given', async () => {
    const user = await researcher('never@example.org');
    await expect(requireDatasetAccess(platform, user, datasetId)).rejects.toMatchObject({
      code: 'no_dataset_access',
      status: 403,
    });
  });

  it('says grant_revoked once the grant is revoked, and grant_expired once it ran out', async () => {
    const user = await researcher('ended@example.org');
    const grant = await grantDatasetAccess(platform, testActor, {
      email: user.email,
      datasetId,
      level: 'aggregate',
    });
    await expect(requireDatasetAccess(platform, user, datasetId)).resolves.toMatchObject({
      level: 'aggregate',
    });
    await revokeGrant(platform, testActor, grant.id);
    await expect(requireDatasetAccess(platform, user, datasetId)).rejects.toMatchObject({
      code: 'grant_revoked',
      status: 403,
    });

    const later = await grantDatasetAccess(platform, testActor, {
      email: user.email,
      datasetId,
      level: 'aggregate',
      expiresAt: new Date(Date.now() + 60_000),
    });
    // The grant runs out: its end moves to now, after the revocation above.
    await platform.catalog.db
      .updateTable('dataset_grants')
      .set({ expires_at: new Date() })
      .where('id', '=', later.id)
      .execute();
    await expect(requireDatasetAccess(platform, user, datasetId)).rejects.toMatchObject({
      code: 'grant_expired',
      message: expect.stringMatching(
        /^Your access to dataset lab-results expired on \d{4}-\d{2}-\d{2}\./,
      ),
    });
  });
});
