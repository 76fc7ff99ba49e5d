import { sql } from 'kysely';
import { LRUCache } from 'lru-cache';
import type { CatalogDb } from './catalog.ts';
import type { Box } from './cell-box.ts';
import type { HeldReads } from './held-reads.ts';

export type ReleasedCell = {
  id: string;
  family: string;
  queryId: string;
  /** What the cell was, for the reason shown when a later one is suppressed. */
  cell: unknown;
  patients: number;
  releasedAt: Date;
};

/** A cell and the holder it was released to. */
export type HolderCell = ReleasedCell & { holder: string };

/** A cell that has a box, the holder it was released to, and what was stored of it. */
export type BoxedCell = ReleasedCell & {
  holder: string;
  stored: { box?: Box; boxKey?: string; scope?: string; rows?: number };
};

/**
 * Cells already read, per catalog, by id. The ledger only appends (a recorded cell never
 * changes), so a cell read once may be kept: a check then reads the ids of the cells it needs
 * (with their query and family) and only those it has not seen in full. A kept cell counts only
 * where its query and family match the row's: a ledger reset beneath a running process (a
 * catalog restored, its ids started again) gives old ids to new cells, which are read again.
 * Parsing a holder's recent cells (their boxes list the releases they read) was most of a small
 * query's time (docs/benchmarks.md, "Queries"). Bounded by the characters of the cells' stored
 * JSON.
 */
const cellsRead = new WeakMap<CatalogDb, LRUCache<string, ReleasedCell>>();
const cellsReadLimit = 32 * 1024 * 1024;

function cellsCache(db: CatalogDb): LRUCache<string, ReleasedCell> {
  let cache = cellsRead.get(db);
  if (!cache) {
    cache = new LRUCache<string, ReleasedCell>({
      maxSize: cellsReadLimit,
      sizeCalculation: (cell) => JSON.stringify(cell.cell).length + 200,
    });
    cellsRead.set(db, cache);
  }
  return cache;
}

/** What a check reads of a cell before its whole: enough to tell a kept cell is the same. */
type CellKey = { id: string; queryId: string; family: string };

async function cellsById(
  db: CatalogDb,
  keys: readonly CellKey[],
): Promise<Map<string, ReleasedCell>> {
  const cache = cellsCache(db);
  const found = new Map<string, ReleasedCell>();
  const missing: string[] = [];
  const seen = new Set<string>();
  for (const { id, queryId, family } of keys) {
    if (seen.has(id)) continue;
    seen.add(id);
    const cell = cache.get(id);
    if (cell && cell.queryId === queryId && cell.family === family) found.set(id, cell);
    else missing.push(id);
  }
  for (let start = 0; start < missing.length; start += 1000) {
    const rows = await db
      .selectFrom('released_cells')
      .select(['id', 'family', 'query_id', 'cell', 'patients', 'released_at'])
      .where('id', 'in', missing.slice(start, start + 1000))
      .execute();
    for (const row of rows) {
      const cell: ReleasedCell = {
        id: String(row.id),
        family: row.family,
        queryId: row.query_id,
        cell: row.cell,
        patients: Number(row.patients),
        releasedAt: row.released_at,
      };
      cache.set(cell.id, cell);
      found.set(cell.id, cell);
    }
  }
  return found;
}

/**
 * Whose ledger a check reads: the holder the result is released to, and the user who asks (null:
 * the holder's alone). A check reads the cells released to the holder and to every holder the
 * user has been with (ledger_holders), which hold every cell the user asked for.
 */
export type LedgerReader = { holder: string; userId: string | null };

/** The release ledger: the aggregate cells a holder (a project or a user) has been shown. */
export function releasedCellsRepository(db: CatalogDb) {
  return {
    /**
     * What a new result is checked against, in one read: the earlier cells of these families on
     * the dataset, by family, and the most recent cells that have a box (kept since issue 27),
     * newest first, at most `poolSize`: what the set search combines a new result with. Both
     * over the cells of the holder, of the user under any holder, and of every holder the user
     * has been with; each cell says which holder it was released to. Also the holders listed
     * for the user (ledger_holders), which `held` holds in memory where this process owns the
     * catalog: only this process adds to them, and nothing takes one away.
     */
    async relevant(
      reader: LedgerReader,
      datasetId: string,
      families: readonly string[],
      poolSize: number,
      held?: HeldReads,
    ): Promise<{
      earlier: Map<string, HolderCell[]>;
      pool: BoxedCell[];
      listed: readonly string[];
    }> {
      // First the user's holders (one read of a short list), then the ids only, then the cells
      // not already in memory. Every cell the user asked for was released to one of their
      // holders (the record lists the holder in the same statement), so reading by holder
      // reads them all. The reads of ids go in one statement: the newest boxed cells of each
      // holder, each branch planned on the index of its own holder and stopping after
      // `poolSize`, of which only the newest `poolSize` in all come back (each branch's rows
      // sent back, or one branch over all the holders, cost tens of milliseconds per thousand
      // cells on PGlite); and the cells of the families.
      const { holder, userId } = reader;
      const readListed = async (user: string) =>
        Object.freeze(
          (
            await db
              .selectFrom('ledger_holders')
              .select('holder')
              .where('user_id', '=', user)
              .execute()
          ).map((row) => row.holder),
        );
      const listed: readonly string[] = !userId
        ? []
        : held
          ? ((await held.read(`ledger-holders\u0000${userId}`, ['ledger_holders'], () =>
              readListed(userId),
            )) ?? [])
          : await readListed(userId);
      const holders = [...new Set([holder, ...listed])];
      const holderList = sql.join(holders.map((name) => sql`${name}`));
      const ofFamily = (slice: readonly string[]) =>
        sql`select id, query_id, family, holder, false as recent
          from released_cells
          where holder in (${holderList}) and dataset_id = ${datasetId}
            and family in (${sql.join(slice.map((family) => sql`${family}`))})`;
      // In slices, so that a result with many groups stays within a statement's parameters.
      const slices: string[][] = [];
      for (let start = 0; start < families.length; start += 1000) {
        slices.push(families.slice(start, start + 1000));
      }
      const newest = (name: string, index: number) =>
        sql`select * from (
            select id, query_id, family, holder from released_cells
            where holder = ${name} and dataset_id = ${datasetId} and cell ? 'box'
            order by id desc limit ${poolSize}
          ) as ${sql.id(`h${index}`)}`;
      const recentPool =
        holders.length === 1
          ? sql`select *, true as recent from (${newest(holder, 0)}) as pool`
          : sql`select *, true as recent from (
              select * from (${sql.join(holders.map(newest), sql` union all `)}) as every
              order by id desc limit ${poolSize}
            ) as pool`;
      type IdRow = {
        id: unknown;
        query_id: string;
        family: string;
        holder: string;
        recent: boolean;
      };
      const [firstSlice, ...moreSlices] = slices;
      const first = (
        await sql<IdRow>`${recentPool}${firstSlice ? sql` union all ${ofFamily(firstSlice)}` : sql``}`.execute(
          db,
        )
      ).rows;
      const keyOf = (row: IdRow): CellKey & { holder: string } => ({
        id: String(row.id),
        queryId: row.query_id,
        family: row.family,
        holder: row.holder,
      });
      // Newest first, each cell once (a cell of the user's under this holder is in two
      // branches), at most `poolSize`; sorted here, as an ORDER BY over the branches sorted all.
      const recentKeys = uniqueById(first.filter((row) => row.recent).map(keyOf))
        .sort((a, b) => (BigInt(b.id) > BigInt(a.id) ? 1 : BigInt(b.id) < BigInt(a.id) ? -1 : 0))
        .slice(0, poolSize);
      const familyRows = first.filter((row) => !row.recent);
      for (const slice of moreSlices) {
        familyRows.push(...(await sql<IdRow>`${ofFamily(slice)}`.execute(db)).rows);
      }
      const familyKeys = uniqueById(familyRows.map(keyOf));
      const cells = await cellsById(db, [...recentKeys, ...familyKeys]);
      const earlier = new Map<string, HolderCell[]>();
      for (const { id, holder: releasedTo } of familyKeys) {
        const cell = { ...cells.get(id)!, holder: releasedTo };
        earlier.set(cell.family, [...(earlier.get(cell.family) ?? []), cell]);
      }
      // The recent cells, newest first: the pool the set search combines a new result with.
      const pool = recentKeys.map((key) => {
        const cell = cells.get(key.id)!;
        return { ...cell, holder: key.holder, stored: cell.cell as BoxedCell['stored'] };
      });
      return { earlier, pool, listed };
    },

    /**
     * Records the cells of a result released to the holder at the user's request, and the
     * holder among the user's holders unless `holderListed` says it is there already.
     */
    async record(
      reader: LedgerReader,
      datasetId: string,
      queryId: string,
      cells: ReadonlyArray<{ family: string; cell: unknown; patients: number }>,
      options: { holderListed?: boolean } = {},
    ): Promise<void> {
      const { holder, userId } = reader;
      const cache = cellsCache(db);
      for (let start = 0; start < cells.length; start += 500) {
        const slice = cells.slice(start, start + 500);
        if (slice.length === 0) break;
        const stored = slice.map((cell) => JSON.stringify(cell.cell));
        const values = slice.map((cell, index) => ({
          holder,
          user_id: userId,
          dataset_id: datasetId,
          family: cell.family,
          query_id: queryId,
          cell: stored[index]!,
          patients: cell.patients,
        }));
        // The holder joins the user's holders in the same statement as the first cells.
        const rows = await (
          userId && start === 0 && !options.holderListed
            ? db
                .with('listed', (cte) =>
                  cte
                    .insertInto('ledger_holders')
                    .values({ user_id: userId, holder })
                    .onConflict((conflict) => conflict.columns(['user_id', 'holder']).doNothing())
                    .returning('holder'),
                )
                .insertInto('released_cells')
            : db.insertInto('released_cells')
        )
          .values(values)
          .returning(['id', 'family', 'released_at'])
          .execute();
        // Kept as read, so that the holder's next check need not read back what this one
        // recorded: each row matched to its cell by its family (one cell per family in a
        // record; if not, nothing is kept and the next check reads them). The cell is kept as
        // it will read back, from its JSON.
        const byFamily = new Map(slice.map((cell, index) => [cell.family, index]));
        if (byFamily.size !== slice.length || rows.length !== slice.length) continue;
        for (const row of rows) {
          const index = byFamily.get(row.family);
          if (index === undefined) continue;
          cache.set(String(row.id), {
            id: String(row.id),
            family: row.family,
            queryId,
            cell: JSON.parse(stored[index]!) as unknown,
            patients: slice[index]!.patients,
            releasedAt: row.released_at,
          });
        }
      }
    },
  };
}

function uniqueById<T extends { id: string }>(rows: readonly T[]): T[] {
  const seen = new Set<string>();
  return rows.filter((row) => !seen.has(row.id) && seen.add(row.id));
}

/**
 * Adds a holder to the user's holders: the ledger then checks the user's results against what
 * it was shown, whoever asked, from now on and after they leave it. Called when a result is
 * recorded and when a user joins a project.
 */
export async function rememberLedgerHolder(
  db: CatalogDb,
  userId: string,
  holder: string,
): Promise<void> {
  await db
    .insertInto('ledger_holders')
    .values({ user_id: userId, holder })
    .onConflict((conflict) => conflict.columns(['user_id', 'holder']).doNothing())
    .execute();
}
