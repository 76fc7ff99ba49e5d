import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { TestPlatform } from '../../../test/helper.ts';
import { createSyntheticLabPlatform, researcherWithAccess } from '../../../test/query-helpers.ts';
import { publishSyntheticLabResults } from '../../../test/synthetic-lake.ts';
import { datasetsRepository } from '../../catalog/datasets-repository.ts';
import { queryJobsRepository } from '../../catalog/query-jobs-repository.ts';
import type { User } from '../../catalog/users-repository.ts';
import type { QueryEngine } from '../../engines/types.ts';
import { createLogger } from '../../logger.ts';
import { cachedResultRows } from '../../query/result-cache.ts';
import { executeQueryJob } from './query-worker.ts';
import { getQuery, readResultPage } from './read-query.ts';
import { submitQuery } from './submit-query.ts';

/**
 * A worker that stalls past its lease (a pause, or PostgreSQL out of its reach) may still finish
 * the query after another server took the job over. Its finish must change nothing that
 * readers see: the job stays the other worker's, and this process keeps none of its rows in
 * memory, where a later page of the job would be served from them instead of the stored result.
 */
describe('a query worker that lost its lease', () => {
  let platform: TestPlatform;
  let user: User;
  const logger = createLogger('silent');

  beforeAll(async () => {
    platform = await createSyntheticLabPlatform({
      hospitals: 1,
      months: 1,
      rowsPerRelease: 20_000,
    });
    user = await researcherWithAccess(platform, 'row@example.org', 'lab-results', 'row');
  }, 60_000);

  afterAll(() => platform.dispose());

  /**
   * A query claimed by server A, which then stalls: its lease runs out, and server B requeues
   * the job and takes it. Returns both claims, the stale one and the live one.
   */
  async function takenOverJob() {
    const jobs = queryJobsRepository(platform.catalog.db);
    const submitted = await submitQuery(
      platform,
      { user, source: 'test' },
      { dataset: 'lab-results', groupBy: [{ column: 'code' }], measures: [{ fn: 'patients' }] },
    );
    const claimedByA = await jobs.claim('server-a', submitted.id);
    if (!claimedByA) throw new Error('server A could not claim the job');
    await jobs.reapStale(new Date(Date.now() + 1000));
    const claimedByB = await jobs.claim('server-b', submitted.id);
    if (!claimedByB) throw new Error('server B could not claim the job');
    return { submitted, claimedByA, claimedByB };
  }

  it('keeps nothing of a result it finished after another worker took the job', async () => {
    const { submitted, claimedByA, claimedByB } = await takenOverJob();

    // Server A wakes up and runs its stale claim to the end before a heartbeat tells it.
    await executeQueryJob(platform, claimedByA, 'server-a', { logger, heartbeatMs: 600_000 });
    expect(await getQuery(platform, user, submitted.id)).toMatchObject({
      status: 'running',
      attempts: 2,
    });
    expect(cachedResultRows(submitted.id)).toBeUndefined();

    // Server B finishes the job; its stored result is what every server serves.
    await executeQueryJob(platform, claimedByB, 'server-b', { logger, heartbeatMs: 600_000 });
    expect(await getQuery(platform, user, submitted.id)).toMatchObject({ status: 'succeeded' });
    const page = await readResultPage(platform, user, submitted.id, { page: 1, pageSize: 100 });
    expect(page.rows.length).toBeGreaterThan(0);
    expect(page.totalRows).toBe(page.rows.length);
  }, 60_000);

  it('stops a run whose lease was lost for that reason, not as cancelled by its user', async () => {
    const { submitted, claimedByA } = await takenOverJob();
    // Server A's engine runs until it is stopped: only a heartbeat can end its run.
    const engine: QueryEngine = {
      ...platform.engine,
      rows: (statement, options) =>
        options?.signal
          ? new Promise((_, reject) => {
              const signal = options.signal!;
              signal.addEventListener('abort', () => reject(signal.reason as Error), {
                once: true,
              });
            })
          : platform.engine.rows(statement, options),
    };
    const lines: string[] = [];
    const logged = createLogger('info', { write: (line: string) => void lines.push(line) });
    await executeQueryJob({ ...platform, engine }, claimedByA, 'server-a', {
      logger: logged,
      heartbeatMs: 20,
    });
    const said = lines.map((line) => JSON.parse(line) as { msg: string; queryJob?: string });
    expect(said).toContainEqual(
      expect.objectContaining({
        queryJob: submitted.id,
        msg: expect.stringContaining("lost the query's lease"),
      }),
    );
    expect(lines.join('\n')).not.toContain('cancelled by the user');
    // The job is server B's, running, with no end written by server A.
    expect(await getQuery(platform, user, submitted.id)).toMatchObject({
      status: 'running',
      error: null,
    });
  }, 60_000);

  it('does not overwrite the result of the worker that took its job over', async () => {
    const { submitted, claimedByA, claimedByB } = await takenOverJob();
    await executeQueryJob(platform, claimedByB, 'server-b', { logger, heartbeatMs: 600_000 });
    const page = { page: 1, pageSize: 100 };
    const answered = await readResultPage(platform, user, submitted.id, page);

    // The month is published again with other rows before the stalled server A wakes up and
    // runs its stale claim over them: the job's answer stays the one server B gave.
    const dataset = await datasetsRepository(platform.catalog.db).get('lab-results');
    if (!dataset) throw new Error('the lab-results dataset is missing');
    await publishSyntheticLabResults(platform, dataset, {
      hospitals: 1,
      months: 1,
      rowsPerRelease: 5_000,
    });
    await executeQueryJob(platform, claimedByA, 'server-a', { logger, heartbeatMs: 600_000 });
    expect(await readResultPage(platform, user, submitted.id, page)).toEqual(answered);
  }, 60_000);
});
