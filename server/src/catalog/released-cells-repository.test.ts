import { randomUUID } from 'node:crypto';
import { sql } from 'kysely';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  catalogBackends,
  createLabResultsCatalog,
  type TestCatalog,
} from '../../test/catalog-backends.ts';
import { rememberLedgerHolder, releasedCellsRepository } from './released-cells-repository.ts';
import { storedCell } from '../../test/ledger-cells.ts';

describe.each(catalogBackends())('release ledger cells on %s', (kind) => {
  let catalog: TestCatalog;

  beforeEach(async () => {
    catalog = await createLabResultsCatalog(kind);
  });

  afterEach(async () => {
    await catalog.dispose();
  });

  const boxed = (n: number) => ({
    groups: ['{"column":"code"}'],
    values: [`code-${n}`, 0.1 + 0.2, null],
    box: { code: { ranges: [[{ v: `code-${n}` }, { v: `code-${n}` }]] }, release: null },
    boxKey: `key-${n}`,
    scope: 'scope',
    rows: 1000 + n,
  });

  it('reads the same cells whether this process recorded them or another one did', async () => {
    // The handle that records keeps what it wrote as read; another handle has nothing in
    // memory and reads everything from the catalog. Both must see the very same ledger.
    const recorder = releasedCellsRepository(catalog.db);
    const reader = () => releasedCellsRepository(catalog.db.withoutPlugins());
    await recorder.record({ holder: 'project:a', userId: null }, 'lab-results', randomUUID(), [
      { family: 'f1', cell: boxed(1), patients: 12 },
      { family: 'f2', cell: { groups: [], values: null }, patients: 40 },
    ]);
    await recorder.record({ holder: 'project:b', userId: null }, 'lab-results', randomUUID(), [
      { family: 'f1', cell: boxed(9), patients: 99 },
    ]);
    await recorder.record({ holder: 'project:a', userId: null }, 'lab-results', randomUUID(), [
      { family: 'f1', cell: boxed(2), patients: 13 },
      { family: 'f3', cell: boxed(3), patients: 30 },
      {
        family: 'result',
        cell: { groups: [], released: [['x']], totalReleased: true },
        patients: 50,
      },
    ]);

    const recorded = await recorder.relevant(
      { holder: 'project:a', userId: null },
      'lab-results',
      ['f1', 'f2', 'result'],
      2,
    );
    const fresh = await reader().relevant(
      { holder: 'project:a', userId: null },
      'lab-results',
      ['f1', 'f2', 'result'],
      2,
    );
    expect(recorded).toEqual(fresh);
    // The two newest boxed cells of the holder, newest first; the earlier ones by family.
    expect(fresh.pool.map((cell) => cell.stored.boxKey)).toEqual(['key-3', 'key-2']);
    expect(fresh.pool[0]!.stored.box).toEqual(boxed(3).box);
    expect([...fresh.earlier.keys()].sort()).toEqual(['f1', 'f2', 'result']);
    expect(
      fresh.earlier
        .get('f1')!
        .map((cell) => cell.patients)
        .sort(),
    ).toEqual([12, 13]);
    expect(
      fresh.earlier.get('f1')!.map((cell) => (cell.cell as { values: unknown[] }).values),
    ).toEqual(expect.arrayContaining([boxed(1).values, boxed(2).values]));
    // Nothing of another holder.
    expect(JSON.stringify(fresh)).not.toContain('code-9');
  });

  it('reads a user’s cells under every holder, and every holder they have been with', async () => {
    const [alice, bob, carol] = [randomUUID(), randomUUID(), randomUUID()];
    const recorder = releasedCellsRepository(catalog.db);
    // Alice as herself, then in project a; Bob in project b; Carol in project a, which
    // Alice left; project c, which Alice joined and never asked in; Carol as herself.
    await recorder.record({ holder: `user:${alice}`, userId: alice }, 'lab-results', randomUUID(), [
      { family: 'f1', cell: boxed(1), patients: 11 },
    ]);
    await recorder.record({ holder: 'project:a', userId: alice }, 'lab-results', randomUUID(), [
      { family: 'f1', cell: boxed(2), patients: 12 },
    ]);
    await recorder.record({ holder: 'project:b', userId: bob }, 'lab-results', randomUUID(), [
      { family: 'f1', cell: boxed(3), patients: 13 },
    ]);
    await recorder.record({ holder: 'project:a', userId: carol }, 'lab-results', randomUUID(), [
      { family: 'f1', cell: boxed(4), patients: 14 },
    ]);
    await rememberLedgerHolder(catalog.db, alice, 'project:c');
    await recorder.record({ holder: 'project:c', userId: bob }, 'lab-results', randomUUID(), [
      { family: 'f1', cell: boxed(5), patients: 15 },
    ]);
    await recorder.record({ holder: `user:${carol}`, userId: carol }, 'lab-results', randomUUID(), [
      { family: 'f1', cell: boxed(6), patients: 16 },
    ]);
    const reader = releasedCellsRepository(catalog.db.withoutPlugins());
    const seen = async (holder: string, userId: string | null) => {
      const found = await reader.relevant({ holder, userId }, 'lab-results', ['f1'], 10);
      return {
        pool: found.pool.map((cell) => `${cell.stored.boxKey} ${cell.holder}`),
        earlier: (found.earlier.get('f1') ?? []).map((cell) => cell.patients).sort(),
      };
    };
    // Alice under project b: b's cells, her own under any holder, and those of a and c (by
    // Carol and Bob), newest first and each once; nothing of Carol as herself.
    expect(await seen('project:b', alice)).toEqual({
      pool: [
        'key-5 project:c',
        'key-4 project:a',
        'key-3 project:b',
        'key-2 project:a',
        `key-1 user:${alice}`,
      ],
      earlier: [11, 12, 13, 14, 15],
    });
    // The pool's bound holds across the holders: the two newest.
    const bounded = await reader.relevant(
      { holder: 'project:b', userId: alice },
      'lab-results',
      [],
      2,
    );
    expect(bounded.pool.map((cell) => cell.stored.boxKey)).toEqual(['key-5', 'key-4']);
    // Bob in project a: a's cells and his own (b and c); Alice's as herself stay hers.
    expect(await seen('project:a', bob)).toEqual({
      pool: ['key-5 project:c', 'key-4 project:a', 'key-3 project:b', 'key-2 project:a'],
      earlier: [12, 13, 14, 15],
    });
    // Without a user, the holder's alone.
    expect((await seen('project:a', null)).earlier).toEqual([12, 14]);
  });

  it('finds a holder’s earlier cells of many families, past one statement’s slice', async () => {
    const families = Array.from({ length: 2500 }, (_, i) => `family-${i}`);
    const recorder = releasedCellsRepository(catalog.db);
    await recorder.record(
      { holder: 'project:a', userId: null },
      'lab-results',
      randomUUID(),
      [0, 999, 1000, 2499].map((i) => ({ family: families[i]!, cell: boxed(i), patients: i })),
    );
    const found = await releasedCellsRepository(catalog.db.withoutPlugins()).relevant(
      { holder: 'project:a', userId: null },
      'lab-results',
      families,
      1000,
    );
    expect([...found.earlier.keys()].sort()).toEqual(
      ['family-0', 'family-1000', 'family-2499', 'family-999'].sort(),
    );
    expect(found.pool).toHaveLength(4);
  });
});

describe.each(catalogBackends())('release ledger cells kept in memory on %s', (kind) => {
  let catalog: TestCatalog;

  beforeEach(async () => {
    catalog = await createLabResultsCatalog(kind);
  });

  afterEach(async () => {
    await catalog.dispose();
  });

  const cell = (code: string) => ({
    groups: ['{"column":"code"}'],
    values: [code],
    box: { code: { ranges: [[{ v: code }, { v: code }]] }, release: null },
    boxKey: `key-${code}`,
    scope: 'scope',
    rows: 100,
  });

  it('reads a ledger reset under a running process afresh, not from what it kept', async () => {
    // Attack: this process records (and keeps) cells; the ledger is then reset beneath it (a
    // catalog restored from a backup, or emptied with its ids started again) and another
    // process records new cells under the same ids. A check here must see the new cells, not
    // the ones it kept under those ids: else it misses an earlier cell and lets a difference
    // through.
    const running = releasedCellsRepository(catalog.db);
    await running.record({ holder: 'project:a', userId: null }, 'lab-results', randomUUID(), [
      { family: 'old-family', cell: cell('OLD'), patients: 500 },
    ]);
    expect(
      (
        await running.relevant(
          { holder: 'project:a', userId: null },
          'lab-results',
          ['old-family'],
          10,
        )
      ).pool,
    ).toHaveLength(1);

    await sql`truncate released_cells restart identity`.execute(catalog.db);
    const other = releasedCellsRepository(catalog.db.withoutPlugins());
    await other.record({ holder: 'project:b', userId: null }, 'lab-results', randomUUID(), [
      { family: 'f-new', cell: cell('NEW'), patients: 41 },
    ]);

    const seen = await running.relevant(
      { holder: 'project:b', userId: null },
      'lab-results',
      ['f-new'],
      10,
    );
    expect(seen.earlier.get('f-new')?.map((found) => found.patients)).toEqual([41]);
    expect(seen.pool.map((found) => found.stored.boxKey)).toEqual(['key-NEW']);
    expect(JSON.stringify(seen)).not.toContain('OLD');
  });
});

describe('release ledger cells held in memory (pglite, the embedded catalog)', () => {
  let catalog: TestCatalog;

  beforeEach(async () => {
    catalog = await createLabResultsCatalog('pglite');
  });

  afterEach(async () => {
    await catalog.dispose();
  });

  const cell = storedCell;

  it('reads from memory what the catalog holds, through records, other writers and resets', async () => {
    // The oracle is the catalog read afresh (no plugins, nothing held). Between checks: records
    // by this process (written through), records that bypass the held index (grown at the next
    // check), a holder joined, cells deleted and the ledger emptied (read whole again).
    const held = catalog.held!;
    const ledger = releasedCellsRepository(catalog.db);
    const fresh = releasedCellsRepository(catalog.db.withoutPlugins());
    const [alice, bob] = [randomUUID(), randomUUID()];
    const holders = [`user:${alice}`, `user:${bob}`, 'project:a', 'project:b'];
    const families = ['f0', 'f1', 'f2', 'f3', 'f4'];
    let seed = 7;
    const next = (n: number) => {
      // The high bits of a linear congruential generator: its low ones repeat in short cycles.
      seed = (seed * 1_103_515_245 + 12_345) % 2_147_483_648;
      return Math.floor((seed / 2_147_483_648) * n);
    };
    let cellNumber = 0;
    const readers = [
      { holder: `user:${alice}`, userId: alice },
      { holder: 'project:a', userId: alice },
      { holder: 'project:b', userId: bob },
      { holder: 'project:a', userId: null },
    ];
    for (let step = 0; step < 60; step += 1) {
      const action = next(10);
      const reader = readers[next(readers.length)]!;
      if (action < 6) {
        const cells = Array.from({ length: 1 + next(4) }, () => {
          cellNumber += 1;
          return {
            family: families[next(families.length)]!,
            cell: cell(cellNumber, next(3) > 0),
            patients: cellNumber,
          };
        });
        // As a check records: with the holders it read, after reading (so held) or not.
        const seen = await ledger.relevant(reader, 'lab-results', families, 5, held);
        const bypass = action === 5;
        await ledger.record(reader, 'lab-results', randomUUID(), cells, {
          holderListed: seen.listed.includes(reader.holder),
          ...(bypass ? {} : { held, otherHolders: seen.listed }),
        });
      } else if (action === 6) {
        await rememberLedgerHolder(catalog.db, bob, holders[next(holders.length)]!);
      } else if (action === 7) {
        await catalog.db
          .deleteFrom('released_cells')
          .where('family', '=', families[next(families.length)]!)
          .execute();
      } else if (action === 8 && next(4) === 0) {
        await sql`truncate released_cells restart identity`.execute(catalog.db);
      }
      for (const each of readers) {
        const fromMemory = await ledger.relevant(each, 'lab-results', families, 5, held);
        const fromCatalog = await fresh.relevant(each, 'lab-results', families, 5);
        const shown = (found: typeof fromMemory) => ({
          pool: found.pool.map((c) => `${c.id} ${c.holder}`),
          earlier: [...found.earlier.entries()]
            .map(([family, list]) => [family, list.map((c) => `${c.id} ${c.holder}`).sort()])
            .sort(),
          listed: [...found.listed].sort(),
        });
        expect(shown(fromMemory), `step ${step}`).toEqual(shown(fromCatalog));
      }
    }
  });

  it('after this process records a result, the next check reads nothing of the ledger', async () => {
    const held = catalog.held!;
    const ledger = releasedCellsRepository(catalog.db);
    const user = randomUUID();
    const reader = { holder: `user:${user}`, userId: user };
    const first = await ledger.relevant(reader, 'lab-results', ['f'], 10, held);
    await ledger.record(reader, 'lab-results', randomUUID(), [
      { family: 'f', cell: cell(1, true), patients: 20 },
    ]);
    // Recorded without the index (not written through): the next check reads what was added.
    const loadsBefore = held.loads;
    const second = await ledger.relevant(reader, 'lab-results', ['f'], 10, held);
    expect(held.loads).toBeGreaterThan(loadsBefore);
    expect(second.pool.map((c) => c.patients)).toEqual([20]);
    expect(first.pool).toEqual([]);
    await ledger.record(
      reader,
      'lab-results',
      randomUUID(),
      [
        { family: 'f', cell: cell(2, true), patients: 31 },
        { family: 'g', cell: cell(3, false), patients: 40 },
      ],
      { holderListed: second.listed.includes(reader.holder), held, otherHolders: second.listed },
    );
    const loadsAfter = held.loads;
    const third = await ledger.relevant(reader, 'lab-results', ['f', 'g'], 10, held);
    expect(held.loads).toBe(loadsAfter);
    expect(third.pool.map((c) => c.patients)).toEqual([31, 20]);
    expect(third.earlier.get('f')!.map((c) => c.patients)).toEqual([20, 31]);
    expect(third.earlier.get('g')!.map((c) => c.patients)).toEqual([40]);
  });
});
