import { readFile } from 'node:fs/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestPlatform, testActor, type TestPlatform } from '../../../test/helper.ts';
import { contractFile, ingest, synthea } from '../../../test/ingest-helpers.ts';
import { researcherWithAccess, runQuery } from '../../../test/query-helpers.ts';
import { releasedCellsRepository } from '../../catalog/released-cells-repository.ts';
import { addHospital, saveDataset } from '../../use-cases/manage-datasets.ts';
import { ledgerPoolSize } from '../release-ledger.ts';

/**
 * How long the release ledger's check takes when the holder's ledger is full (ledgerPoolSize
 * cells), on DuckDB and the Synthea fixture: the same grouped query for a holder released
 * nothing and for one released a full pool of cells of codes, sexes, months and ZIP areas. The
 * difference is the check. Printed for docs/privacy.md.
 */
describe('the release ledger’s check at its bound', () => {
  let platform: TestPlatform;

  beforeAll(async () => {
    platform = await createTestPlatform();
    await addHospital(platform, testActor, { id: 'h01', name: 'Hospital h01' });
    const contract = JSON.parse(await readFile(contractFile('synthea-observations'), 'utf8'));
    await saveDataset(platform, { ...contract, name: 'guarded', title: 'Guarded' });
    const result = await ingest(platform, {
      file: synthea('all'),
      hospital: 'h01',
      month: '2021-01',
      dataset: 'guarded',
    });
    expect(result.status).toBe('published');
  }, 120_000);

  afterAll(async () => {
    await platform?.dispose();
  });

  it('prints the time of a check against a full pool', async () => {
    const fresh = await researcherWithAccess(platform, 'fresh@example.org', 'guarded', 'aggregate');
    const busy = await researcherWithAccess(platform, 'busy@example.org', 'guarded', 'aggregate');
    const ask = async (user: typeof fresh, spec: object) => {
      const started = performance.now();
      const { job } = await runQuery(platform, user, { dataset: 'guarded', ...spec });
      expect(job.status).toBe('succeeded');
      return performance.now() - started;
    };
    const zips = ['905', '908', '911', '912', '913', '914', '920', '925', '926', '927'];
    const fills = [
      ...zips.map((zip) => ({ where: { column: 'zip', op: 'ne', value: zip } })),
      ...['M', 'F'].map((sex) => ({ where: { column: 'sex', op: 'eq', value: sex } })),
      { where: { column: 'value', op: 'gt', value: 10 } },
      { where: { column: 'value', op: 'lte', value: 100 } },
      { where: { column: 'observed_at', op: 'gte', value: '2015-01-01' } },
      { where: { column: 'observed_at', op: 'lt', value: '2018-01-01' } },
    ];
    const repository = releasedCellsRepository(platform.catalog.db);
    let cells = 0;
    for (let round = 0; cells < ledgerPoolSize; round += 1) {
      const fill = fills[round % fills.length]!;
      const grouping =
        round < fills.length ? [{ column: 'code' }] : [{ column: 'code' }, { column: 'sex' }];
      await ask(busy, { ...fill, groupBy: grouping, measures: [{ fn: 'patients' }] });
      cells = (
        await repository.relevant(
          { holder: `user:${busy.id}`, userId: busy.id },
          'guarded',
          [],
          ledgerPoolSize * 2,
        )
      ).pool.length;
      if (round > 3 * fills.length) break;
    }
    const spec = {
      where: { column: 'zip', op: 'ne', value: '930' },
      groupBy: [{ column: 'code' }],
      measures: [{ fn: 'patients' }, { fn: 'count' }, { fn: 'sum', column: 'value' }],
    };
    const alone = [await ask(fresh, spec), await ask(fresh, spec)];
    const full = [await ask(busy, spec), await ask(busy, { ...spec, where: undefined })];
    console.log(
      `release ledger check on DuckDB: ${cells} cells released to the holder; the query took ${alone.map((ms) => Math.round(ms)).join(' and ')} ms for a holder with none, ${full.map((ms) => Math.round(ms)).join(' and ')} ms for this one`,
    );
  }, 600_000);
});
