// npm run bench:ledger-read — what the release ledger's read and lock cost on every aggregate
// query since it follows the user across holders (2026-12-07), against the holder's alone as
// before, in one command on the same catalog, alternately. The catalog holds --cells cells
// (default 20000) over --holders holders (default 50); the measured user asks in project a
// (4,000 cells of its own, most by others) and has 2,000 cells as themselves and 2,000 in a
// former project. Times, --runs times each (default 200), the read of the ids of the pool (the
// newest 1,000 boxed cells) and of 60 families, with the cells already in memory as on a busy
// server: by the holder alone (the read before), and by the holder, the user and the user's
// holders (the read now); and taking and letting go of the ledger's lock for one name (the
// holder) and for two (the user, then the holder). PGlite in a temporary directory, or
// PostgreSQL with --database-url (a server that allows CREATE DATABASE; a database of its own is
// made and dropped). Prints the medians and their ratios.
import { randomUUID } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { sql } from 'kysely';
import pg from 'pg';
import { openCatalog, type Catalog } from '../server/src/catalog/catalog.ts';
import { migrateToLatest } from '../server/src/catalog/migrate.ts';
import { releasedCellsRepository } from '../server/src/catalog/released-cells-repository.ts';
import { ledgerLockKeys, lockReleaseLedger } from '../server/src/query/ledger/lock.ts';
import { ledgerPoolSize } from '../server/src/query/release-ledger.ts';

const { values } = parseArgs({
  options: {
    'database-url': { type: 'string' },
    cells: { type: 'string', default: '20000' },
    holders: { type: 'string', default: '50' },
    runs: { type: 'string', default: '200' },
  },
});
const cells = Number(values.cells);
const holders = Number(values.holders);
const runs = Number(values.runs);
const adminUrl = values['database-url'];

let catalog: Catalog;
let dispose: () => Promise<void>;
if (adminUrl) {
  const name = `medlake_bench_ledger_${process.pid}`;
  const admin = async (statement: string) => {
    const client = new pg.Client({ connectionString: adminUrl });
    await client.connect();
    try {
      await client.query(statement);
    } finally {
      await client.end();
    }
  };
  await admin(`create database ${name}`);
  const url = new URL(adminUrl);
  url.pathname = `/${name}`;
  catalog = await openCatalog({ databaseUrl: url.toString() });
  dispose = async () => {
    await catalog.close();
    await admin(`drop database if exists ${name}`);
  };
} else {
  const home = await mkdtemp(path.join(tmpdir(), 'medlake-bench-ledger-'));
  catalog = await openCatalog({ directory: path.join(home, 'catalog') });
  dispose = async () => {
    await catalog.close();
    await rm(home, { recursive: true, force: true });
  };
}

try {
  const { db } = catalog;
  await migrateToLatest(db);
  await db
    .insertInto('datasets')
    .values({ id: 'lab', title: 'Lab', description: '', contract: '{}' })
    .execute();
  const user = randomUUID();
  const others = Array.from({ length: 20 }, () => randomUUID());
  // Cell i: the user's as themselves (i % 10 = 1), in their former project b (i % 10 = 2), in
  // project a by others (i % 10 in 3, 4); the rest by others over the other holders.
  await sql`
    insert into released_cells (holder, user_id, dataset_id, family, query_id, cell, patients)
    select
      case i % 10 when 1 then ${`user:${user}`} when 2 then 'project:b'
        when 3 then 'project:a' when 4 then 'project:a'
        else 'project:p' || (i % ${holders}) end,
      case when i % 10 in (1, 2) then ${user}::uuid
        else (${sql.lit(`{${others.join(',')}}`)}::uuid[])[1 + i % ${others.length}] end,
      'lab', md5((i % 3000)::text), gen_random_uuid(),
      jsonb_build_object('box', jsonb_build_object('code', repeat('x', 300)), 'values',
        jsonb_build_array(i), 'boxKey', md5(i::text), 'scope', 's', 'rows', i),
      i
    from generate_series(1, ${cells}) as i
  `.execute(db);
  await sql`
    insert into ledger_holders (user_id, holder)
    values (${user}, ${`user:${user}`}), (${user}, 'project:b'), (${user}, 'project:a')
  `.execute(db);
  if (catalog.kind === 'postgres') await sql`analyze released_cells`.execute(db);
  // 60 families of the 3,000 the fill wrote, as a result with a few dozen groups asks for.
  const familyList = (
    await sql<{ family: string }>`
      select md5((x * 37)::text) as family from generate_series(0, 59) as g(x)
    `.execute(db)
  ).rows.map((row) => row.family);

  const repository = releasedCellsRepository(db);
  const holderAlone = { holder: 'project:a', userId: null };
  const followingUser = { holder: 'project:a', userId: user };
  // Warm: every cell of both reads parsed once and kept, as on a server that has run checks.
  const before = await repository.relevant(holderAlone, 'lab', familyList, ledgerPoolSize);
  const now = await repository.relevant(followingUser, 'lab', familyList, ledgerPoolSize);
  const holdersOf = (pool: ReadonlyArray<{ holder: string }>) =>
    [...new Set(pool.map((cell) => cell.holder))].length;
  console.log(
    `${catalog.kind}: ${cells.toLocaleString('en-US')} cells over ${holders + 3} holders; the pool by the holder alone ${before.pool.length} cells of ${holdersOf(before.pool)} holder, by holder and user ${now.pool.length} cells of ${holdersOf(now.pool)} holders; earlier cells of the 60 families ${[...before.earlier.values()].flat().length} and ${[...now.earlier.values()].flat().length}`,
  );

  const time = async (work: () => Promise<unknown>) => {
    const started = process.hrtime.bigint();
    await work();
    return Number(process.hrtime.bigint() - started) / 1e6;
  };
  const median = (list: number[]) => list.toSorted((a, b) => a - b)[list.length >> 1]!;
  const reads: [number[], number[]] = [[], []];
  const locks: [number[], number[]] = [[], []];
  const lockOnce = async (names: string[]) => {
    const release = await lockReleaseLedger(catalog, names, 'lab');
    await release();
  };
  // Each pair in turn, the first of a pair on even runs and the second on odd ones.
  const pair = async (
    into: [number[], number[]],
    work: [() => Promise<unknown>, () => Promise<unknown>],
    run: number,
  ) => {
    for (const side of run % 2 === 0 ? [0, 1] : [1, 0]) into[side]!.push(await time(work[side]!));
  };
  for (let run = 0; run < runs; run += 1) {
    await pair(
      reads,
      [
        () => repository.relevant(holderAlone, 'lab', familyList, ledgerPoolSize),
        () => repository.relevant(followingUser, 'lab', familyList, ledgerPoolSize),
      ],
      run,
    );
    await pair(
      locks,
      [() => lockOnce(['project:a']), () => lockOnce(ledgerLockKeys('project:a', user))],
      run,
    );
  }
  const line = (what: string, [a, b]: [number[], number[]], first: string, second: string) =>
    console.log(
      `${what}: ${first} ${median(a).toFixed(2)} ms, ${second} ${median(b).toFixed(2)} ms, ratio ${(median(b) / median(a)).toFixed(2)} (medians of ${runs}, alternately, each first on every other run)`,
    );
  line('ledger read', reads, 'holder alone', 'holder, user and their holders');
  line('ledger lock', locks, 'one name', 'user then holder');
} finally {
  await dispose();
}
