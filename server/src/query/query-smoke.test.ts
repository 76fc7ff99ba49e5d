import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { User } from '../catalog/users-repository.ts';
import { createTestPlatform, type TestPlatform } from '../../test/helper.ts';
import { ingest, prepareDataset, synthea } from '../../test/ingest-helpers.ts';
import { runQuery } from '../../test/query-helpers.ts';
import { addUser, grantDatasetAccess } from '../use-cases/manage-access.ts';

describe('query smoke', () => {
  let platform: TestPlatform;
  let user: User;
  beforeAll(async () => {
    platform = await createTestPlatform();
    await prepareDataset(platform, 'synthea-observations');
    await ingest(platform, { file: synthea('2020-12'), month: '2020-12' });
    user = await addUser(platform, { email: 'r@example.org', name: 'R', role: 'researcher' });
    await grantDatasetAccess(platform, { email: 'r@example.org', datasetId: 'synthea-observations', level: 'aggregate' });
  }, 60_000);
  afterAll(() => platform.dispose());

  it('runs', async () => {
    const { job, rows } = await runQuery(platform, user, {
      dataset: 'synthea-observations',
      groupBy: [{ column: 'sex' }],
      measures: [{ fn: 'count' }, { fn: 'patients' }, { fn: 'mean', column: 'value' }, { fn: 'histogram', column: 'age', binWidth: 10 }],
    });
    console.log(JSON.stringify(job, null, 1), JSON.stringify(rows, null, 1));
    expect(job.status).toBe('succeeded');
  });
});
