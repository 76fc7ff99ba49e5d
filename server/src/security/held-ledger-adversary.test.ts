import { randomUUID } from 'node:crypto';
import type { QueryJobView } from '@medlake/shared';
import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { tokensWithGrants } from '../../test/api-helpers.ts';
import { createLabResultsCatalog, type TestCatalog } from '../../test/catalog-backends.ts';
import { createTestApp, createTestPlatform, type TestPlatform } from '../../test/helper.ts';
import { ingest, prepareDataset, synthea } from '../../test/ingest-helpers.ts';
import { researcherWithAccess, runQuery } from '../../test/query-helpers.ts';
import type { App } from '../app.ts';
import { openCatalog, type CatalogDb } from '../catalog/catalog.ts';
import type { HeldReads } from '../catalog/held-reads.ts';
import {
  heldIndexLimit,
  rememberLedgerHolder,
  releasedCellsRepository,
} from '../catalog/released-cells-repository.ts';
import { createLogger } from '../logger.ts';
import { startQueryWorker, type QueryWorker } from '../use-cases/queries/query-worker.ts';
import { storedCell } from '../../test/ledger-cells.ts';

/**
 * An outside adversary's attacks on the release ledger's cells held in memory on PGlite
 * (released-cells-repository.ts: LedgerIndex, heldIndex, record's writeThrough) and on the answer
 * a waiting submit gets while its job's end is written (query-worker.ts). What the held path
 * gives a check must be what the catalog gives: above all, no cell released before a check began
 * may be missing from what the check compares a new result with, and a check the catalog would
 * answer must not fail on the held path.
 */

type Relevant = Awaited<ReturnType<ReturnType<typeof releasedCellsRepository>['relevant']>>;

/** What a check reads, as comparable text: each cell by its id and holder. */
const shown = (found: Relevant) => ({
  pool: found.pool.map((cell) => `${cell.id} ${cell.holder}`),
  earlier: [...found.earlier.entries()]
    .map(([family, list]) => [family, list.map((cell) => `${cell.id} ${cell.holder}`).sort()])
    .sort(),
  listed: [...found.listed].sort(),
});

describe('a holder whose cells pass the held limit through its own records', () => {
  let catalog: TestCatalog;

  beforeAll(async () => {
    catalog = await createLabResultsCatalog('pglite');
  }, 60_000);

  afterAll(() => catalog?.dispose());

  it('is still checked, as the catalog reads it, once anyone else has recorded', async () => {
    // A busy project one cell short of the limit on held cells (recorded here in one statement;
    // the server records them result by result). Its next result adds several cells, written
    // through to its held index: the index now lists more cells than the limit. Any record of
    // another holder then makes it grow at the project's next check, which must not fail (every
    // member's every aggregate query on the dataset would be refused) nor differ from the
    // catalog's read.
    const held = catalog.held!;
    const ledger = releasedCellsRepository(catalog.db);
    const fresh = releasedCellsRepository(catalog.db.withoutPlugins());
    const member = randomUUID();
    const project = { holder: 'project:busy', userId: member };
    await sql`insert into released_cells (holder, user_id, dataset_id, family, query_id, cell, patients)
      select 'project:busy', ${member}::uuid, 'lab-results', 'bulk-' || (i % 7), gen_random_uuid(),
        jsonb_build_object('groups', jsonb_build_array(), 'values', null, 'rows', i), 20
      from generate_series(1, ${heldIndexLimit - 1}) as i`.execute(catalog.db);
    await rememberLedgerHolder(catalog.db, member, project.holder);
    const families = ['f0', 'f1', 'f2', 'f3', 'f4'];

    const first = await ledger.relevant(project, 'lab-results', families, 10, held);
    expect(first.listed).toEqual([project.holder]);
    await ledger.record(
      project,
      'lab-results',
      randomUUID(),
      Array.from({ length: 5 }, (_, n) => ({
        family: `f${n}`,
        cell: storedCell(n + 1, true),
        patients: 30 + n,
      })),
      { holderListed: true, held, otherHolders: first.listed },
    );
    // The project's next check, from memory: nothing was written meanwhile.
    const loads = held.loads;
    const second = await ledger.relevant(project, 'lab-results', families, 10, held);
    expect(held.loads).toBe(loads);
    expect(shown(second)).toEqual(
      shown(await fresh.relevant(project, 'lab-results', families, 10)),
    );

    // Another researcher's result, recorded as the ledger records it.
    const other = { holder: 'project:other', userId: randomUUID() };
    const theirs = await ledger.relevant(other, 'lab-results', families, 10, held);
    await ledger.record(
      other,
      'lab-results',
      randomUUID(),
      [{ family: 'f0', cell: storedCell(100, true), patients: 44 }],
      { holderListed: false, held, otherHolders: theirs.listed },
    );

    for (let check = 0; check < 2; check += 1) {
      const fromMemory = await ledger.relevant(project, 'lab-results', families, 10, held);
      const fromCatalog = await fresh.relevant(project, 'lab-results', families, 10);
      expect(shown(fromMemory), `check ${check}`).toEqual(shown(fromCatalog));
    }
  }, 120_000);
});

describe('held ledger indexes under concurrent checks, records, joins and failures', () => {
  let catalog: TestCatalog;

  beforeAll(async () => {
    catalog = await createLabResultsCatalog('pglite', { alsoAs: ['lab-results-2'] });
  }, 60_000);

  afterAll(() => catalog?.dispose());

  it('never miss a cell recorded before a check began, and read as the catalog at rest and after a restart', async () => {
    const held = catalog.held!;
    const ledger = releasedCellsRepository(catalog.db);
    const datasets = ['lab-results', 'lab-results-2'];
    const families = ['f0', 'f1', 'f2', 'f3'];
    const poolSize = 100_000;
    const users = [randomUUID(), randomUUID(), randomUUID()];
    const projects = ['project:a', 'project:b'];
    /** Who may ask under what: each user as themselves, or in either project. */
    const readers = users.flatMap((userId) => [
      { holder: `user:${userId}`, userId },
      ...projects.map((holder) => ({ holder, userId })),
    ]);
    let seed = 20261207;
    const next = (n: number) => {
      seed = (seed * 1_103_515_245 + 12_345) % 2_147_483_648;
      return Math.floor((seed / 2_147_483_648) * n);
    };

    /** Records whose statement came back, in the order they did. */
    const committed: Array<{
      holder: string;
      datasetId: string;
      queryId: string;
      cells: Array<{ family: string; boxed: boolean }>;
    }> = [];
    /** The holders each user had committed to their list (a join, or a record under it). */
    const listedOf = new Map<string, Set<string>>(users.map((user) => [user, new Set()]));
    let cellNumber = 0;

    /** A check as checkReleaseLedger makes it, then its record; verified against `committed`. */
    const checkAndRecord = async (reader: (typeof readers)[number], datasetId: string) => {
      const before = committed.slice();
      const listedBefore = new Set(listedOf.get(reader.userId)!);
      const seen = await ledger.relevant(reader, datasetId, families, poolSize, held);
      for (const holder of listedBefore) {
        expect(seen.listed, `the holders listed for ${reader.userId}`).toContain(holder);
      }
      const read = new Set([reader.holder, ...listedBefore]);
      for (const record of before) {
        if (record.datasetId !== datasetId || !read.has(record.holder)) continue;
        for (const cell of record.cells) {
          const found = (seen.earlier.get(cell.family) ?? []).some(
            (earlier) => earlier.queryId === record.queryId && earlier.holder === record.holder,
          );
          expect(found, `a cell of ${record.queryId} (${record.holder}) before the check`).toBe(
            true,
          );
          if (cell.boxed) {
            expect(
              seen.pool.some((pooled) => pooled.queryId === record.queryId),
              `a boxed cell of ${record.queryId} in the pool`,
            ).toBe(true);
          }
        }
      }
      const cells = Array.from({ length: 1 + next(3) }, (_, index) => {
        cellNumber += 1;
        // One cell per family in a record, as the ledger records them.
        return { family: families[index]!, boxed: next(3) > 0, n: cellNumber };
      });
      const queryId = randomUUID();
      // A record of this process, written through where it can be; now and then one that is not.
      const throughHeld = next(5) > 0;
      await ledger.record(
        reader,
        datasetId,
        queryId,
        cells.map((cell) => ({
          family: cell.family,
          cell: storedCell(cell.n, cell.boxed),
          patients: cell.n,
        })),
        {
          holderListed: seen.listed.includes(reader.holder),
          ...(throughHeld ? { held, otherHolders: seen.listed } : {}),
        },
      );
      committed.push({ holder: reader.holder, datasetId, queryId, cells });
      listedOf.get(reader.userId)!.add(reader.holder);
    };

    /** A user joins a project as setProjectMember does, in a transaction that may fail. */
    const join = async (userId: string, project: string, fails: boolean) => {
      const joining = catalog.db.transaction().execute(async (trx) => {
        await rememberLedgerHolder(trx, userId, project);
        // Read inside, after the write: nothing of it may be kept if it rolls back.
        await releasedCellsRepository(trx).relevant(
          { holder: project, userId },
          datasets[0]!,
          families,
          10,
          held,
        );
        if (fails) throw new Error('the join fails after its write');
      });
      if (fails) {
        await expect(joining).rejects.toThrow('the join fails');
        return;
      }
      await joining;
      listedOf.get(userId)!.add(project);
    };

    /** A record whose statement fails: an unknown dataset, or a cell the catalog refuses. */
    const failedRecord = async (reader: (typeof readers)[number], datasetId: string) => {
      const seen = await ledger.relevant(reader, datasetId, families, poolSize, held);
      const refused = next(2) === 0;
      await expect(
        ledger.record(
          reader,
          refused ? datasetId : 'no-such-dataset',
          randomUUID(),
          [
            {
              family: 'f0',
              cell: refused ? { text: 'nul \u0000 inside' } : storedCell(0, true),
              patients: 1,
            },
          ],
          { holderListed: seen.listed.includes(reader.holder), held, otherHolders: seen.listed },
        ),
      ).rejects.toThrow();
    };

    const atRest = async (db: CatalogDb, heldNow: HeldReads, label: string) => {
      const fromHeld = releasedCellsRepository(db);
      const fresh = releasedCellsRepository(db.withoutPlugins());
      for (const datasetId of datasets) {
        for (const reader of readers) {
          const fromMemory = await fromHeld.relevant(reader, datasetId, families, 50, heldNow);
          const fromCatalog = await fresh.relevant(reader, datasetId, families, 50);
          expect(shown(fromMemory), `${label}: ${reader.holder} on ${datasetId}`).toEqual(
            shown(fromCatalog),
          );
        }
      }
    };

    for (let round = 0; round < 25; round += 1) {
      // Several at once, each a few steps long, as concurrent requests of a server.
      const flows = Array.from({ length: 3 + next(4) }, () => {
        const steps = Array.from({ length: 1 + next(3) }, () => {
          const action = next(10);
          const reader = readers[next(readers.length)]!;
          const datasetId = datasets[next(datasets.length)]!;
          if (action < 7) return () => checkAndRecord(reader, datasetId);
          if (action === 7) {
            const user = users[next(users.length)]!;
            const project = projects[next(projects.length)]!;
            const fails = next(2) === 0;
            return () => join(user, project, fails);
          }
          return () => failedRecord(reader, datasetId);
        });
        return async () => {
          for (const step of steps) await step();
        };
      });
      await Promise.all(flows.map((flow) => flow()));
      await atRest(catalog.db, held, `round ${round}`);
    }
    expect(committed.length).toBeGreaterThan(40);

    // A restart: the catalog opened again, nothing held.
    await catalog.close();
    const reopened = await openCatalog(catalog.location);
    try {
      await atRest(reopened.db, reopened.held!, 'after a restart');
    } finally {
      await reopened.close();
    }
  }, 300_000);
});

describe('the release ledger end to end, with waiting submits answered early (pglite)', () => {
  const dataset = 'synthea-observations';
  const k = 11;
  let platform: TestPlatform;
  let app: App;
  let worker: QueryWorker | undefined;
  const tokens: Record<string, string> = {};
  let rareZips: string[] = [];

  const post = (user: string, spec: unknown) =>
    app.inject({
      method: 'POST',
      url: '/api/v1/queries?wait=20',
      headers: { authorization: `Bearer ${tokens[user]}` },
      payload: spec as object,
    });
  const patientsSpec = (where?: object) => ({
    dataset,
    measures: [{ fn: 'patients' }],
    ...(where ? { where } : {}),
  });
  /** The patients an answer shows, undefined where held back. */
  const patientsShown = (job: QueryJobView & { firstPage?: { rows: unknown[] } }) => {
    const row = job.firstPage?.rows[0] as { patients?: unknown; suppressed?: boolean } | undefined;
    return row && !row.suppressed && typeof row.patients === 'number' ? row.patients : undefined;
  };

  beforeAll(async () => {
    platform = await createTestPlatform();
    await prepareDataset(platform, dataset);
    await ingest(platform, { file: synthea('all'), month: '2021-06' });
    const oracle = await researcherWithAccess(platform, 'oracle@example.org', dataset, 'row');
    const { rows } = await runQuery(platform, oracle, { dataset, select: ['patient', 'zip'] });
    const byZip = new Map<string, Set<unknown>>();
    for (const row of rows) {
      if (typeof row.zip !== 'string') continue;
      byZip.set(row.zip, (byZip.get(row.zip) ?? new Set()).add(row.patient));
    }
    rareZips = [...byZip]
      .filter(([, patients]) => patients.size > 0 && patients.size < k)
      .map(([zip]) => zip)
      .sort();
    Object.assign(
      tokens,
      await tokensWithGrants(platform, dataset, {
        'eve1@example.org': 'aggregate',
        'eve2@example.org': 'aggregate',
        'eve3@example.org': 'aggregate',
        'colleague@example.org': 'aggregate',
      }),
    );
    worker = startQueryWorker(platform, { logger: createLogger('silent'), pollMs: 50 });
    await worker.ready;
    app = await createTestApp(platform);
  }, 180_000);

  afterAll(async () => {
    await app?.close();
    await worker?.stop();
    await platform?.dispose();
  });

  it('answers no two halves of a small difference, asked at once beside another user, and every early answer is in the catalog', async () => {
    expect(rareZips.length).toBeGreaterThan(0);
    const zip = rareZips[0]!;
    for (const eve of ['eve1@example.org', 'eve2@example.org', 'eve3@example.org']) {
      // Eve asks both halves at the same moment, while a colleague's results are recorded
      // beside hers (so that her held index is grown as well as written through).
      const responses = await Promise.all([
        post(eve, patientsSpec()),
        post('colleague@example.org', patientsSpec({ column: 'sex', op: 'eq', value: 'F' })),
        post(eve, patientsSpec({ column: 'zip', op: 'ne', value: zip })),
        post('colleague@example.org', patientsSpec({ column: 'sex', op: 'eq', value: 'M' })),
      ]);
      const answers = responses.map((response) => {
        expect(response.statusCode, response.body).toBe(200);
        return response.json<QueryJobView & { firstPage?: { rows: unknown[] } }>();
      });
      for (const [index, answer] of answers.entries()) {
        expect(answer.status, JSON.stringify(answer.error)).toBe('succeeded');
        // What the answer said is in the catalog: the job's end, its audit entry, and the ledger's
        // record of every figure it showed.
        const job = await platform.catalog.db
          .selectFrom('query_jobs')
          .select(['status', 'finished_at'])
          .where('id', '=', answer.id)
          .executeTakeFirstOrThrow();
        expect(job.status).toBe('succeeded');
        const audited = await platform.catalog.db
          .selectFrom('audit_log')
          .select('seq')
          .where('action', '=', 'query.submit')
          .where('target', '=', `query:${answer.id}`)
          .execute();
        expect(audited).toHaveLength(1);
        // Eve's (each asked once): a question asked again may record nothing new, by design.
        if ((index === 0 || index === 2) && patientsShown(answer) !== undefined) {
          const recorded = await platform.catalog.db
            .selectFrom('released_cells')
            .select('id')
            .where('query_id', '=', answer.id)
            .execute();
          expect(recorded.length, `the ledger's record of ${answer.id}`).toBeGreaterThan(0);
        }
      }
      const all = patientsShown(answers[0]!);
      const rest = patientsShown(answers[2]!);
      const derived = all !== undefined && rest !== undefined ? all - rest : undefined;
      expect(derived !== undefined && derived > 0 && derived < k, `${all} − ${rest}`).toBe(false);
    }
  }, 180_000);
});
