import { sql } from 'kysely';
import { LRUCache } from 'lru-cache';
import type { CatalogDb } from './catalog.ts';
import type { Box } from './cell-box.ts';
import { heldSize, type HeldReads } from './held-reads.ts';

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

/** A cell's key and the holder it was released to. */
type HolderKey = CellKey & { holder: string };

/** A cell as a ledger index lists it: its key, and its id as a number, for its order. */
type IndexedCell = CellKey & { seq: number };

/**
 * One holder's cells of one dataset, as held in memory where this process owns the catalog
 * (HeldReads): what a check would read of them, without a statement. Cells are only ever added
 * to the ledger, and in the order of their ids (the embedded catalog runs one transaction at a
 * time), so an index read once is grown by the cells recorded since (HeldReads.readGrowing),
 * and by this process's own records as they are written (writeThrough); any other write to the
 * ledger (a reset, a restore) drops it. A holder with more than `heldIndexLimit` cells is not
 * held (`tooMany`): its checks read from the catalog as on PostgreSQL.
 */
class LedgerIndex {
  /** The cells that have a box, oldest first: the newest of them are the set search's pool. */
  readonly boxed: IndexedCell[] = [];
  /** Every cell, by family. */
  readonly byFamily = new Map<string, IndexedCell[]>();
  /** The highest id listed; cells above it are not. */
  last = 0;
  count = 0;

  readonly tooMany: boolean;

  constructor(tooMany = false) {
    this.tooMany = tooMany;
  }

  get [heldSize](): number {
    return this.count + 1;
  }
}

/** The most cells of one holder on one dataset held in memory (about 150 bytes each). */
export const heldIndexLimit = 100_000;

const ledgerTables = ['released_cells'] as const;

const indexKey = (holder: string, datasetId: string) =>
  `ledger-index\u0000${holder}\u0000${datasetId}`;

type IndexRow = { id: unknown; query_id: string; family: string; boxed: boolean };

/** Adds rows, in the order of their ids, above what the index lists; false if one will not fit. */
function extendIndex(index: LedgerIndex, rows: readonly IndexRow[]): boolean {
  const sorted = rows.map((row) => ({ row, seq: Number(row.id) })).sort((a, b) => a.seq - b.seq);
  for (const { row, seq } of sorted) {
    if (!Number.isSafeInteger(seq)) return false;
    // Another read grew it past these already.
    if (seq <= index.last) continue;
    const cell: IndexedCell = {
      id: String(row.id),
      queryId: row.query_id,
      family: row.family,
      seq,
    };
    if (row.boxed) index.boxed.push(cell);
    const family = index.byFamily.get(cell.family);
    if (family) family.push(cell);
    else index.byFamily.set(cell.family, [cell]);
    index.last = seq;
    index.count += 1;
  }
  return true;
}

/** The holder's index, held, grown or read whole; undefined where it cannot be held. */
async function heldIndex(
  db: CatalogDb,
  held: HeldReads,
  holder: string,
  datasetId: string,
): Promise<LedgerIndex | undefined> {
  const rowsAbove = (last: number, limit: number) =>
    db
      .selectFrom('released_cells')
      .select(['id', 'query_id', 'family', sql<boolean>`cell ? 'box'`.as('boxed')])
      .where('holder', '=', holder)
      .where('dataset_id', '=', datasetId)
      .where('id', '>', String(last) as never)
      .orderBy('id')
      .limit(limit)
      .execute();
  const index = await held.readGrowing<LedgerIndex>(
    indexKey(holder, datasetId),
    ledgerTables,
    async () => {
      const rows = await rowsAbove(0, heldIndexLimit + 1);
      if (rows.length > heldIndexLimit) return new LedgerIndex(true);
      const fresh = new LedgerIndex();
      return extendIndex(fresh, rows) ? fresh : undefined;
    },
    async (index) => {
      // Only added to since it was read: the cells above its last, of which it may hold the
      // limit's worth more. A holder past the limit stays there: cells are never taken away.
      if (index.tooMany) return index;
      const room = heldIndexLimit - index.count;
      // A record written through never takes it past the limit (record's `grown`); were it
      // past, the read below would ask for a negative number of rows, and fail at every check.
      if (room < 0) return new LedgerIndex(true);
      const rows = await rowsAbove(index.last, room + 1);
      if (rows.length > room) return new LedgerIndex(true);
      return extendIndex(index, rows) ? index : undefined;
    },
  );
  return index && !index.tooMany ? index : undefined;
}

/** Every holder's index, in the order given; undefined where one of them cannot be held. */
async function heldIndexes(
  db: CatalogDb,
  held: HeldReads,
  holders: readonly string[],
  datasetId: string,
): Promise<Array<{ holder: string; index: LedgerIndex }> | undefined> {
  const indexes = [];
  for (const holder of holders) {
    const index = await heldIndex(db, held, holder, datasetId);
    if (!index) return undefined;
    indexes.push({ holder, index });
  }
  return indexes;
}

/**
 * What readKeys reads, from the holders' indexes: their newest boxed cells, newest first, at
 * most `poolSize` in all, and their cells of the families, in the order of their ids. Taken in
 * one turn of the event loop, so that no record is half seen.
 */
function keysFromIndexes(
  indexes: ReadonlyArray<{ holder: string; index: LedgerIndex }>,
  families: readonly string[],
  poolSize: number,
): { recentKeys: HolderKey[]; familyKeys: HolderKey[] } {
  const key = (holder: string, { seq: _seq, ...cell }: IndexedCell) => ({ ...cell, holder });
  const recent = indexes.flatMap(({ holder, index }) =>
    index.boxed.slice(Math.max(0, index.boxed.length - poolSize)).map((cell) => ({ cell, holder })),
  );
  const recentKeys = recent
    .sort((a, b) => b.cell.seq - a.cell.seq)
    .slice(0, poolSize)
    .map(({ cell, holder }) => key(holder, cell));
  const found: Array<{ cell: IndexedCell; holder: string }> = [];
  for (const family of new Set(families)) {
    for (const { holder, index } of indexes) {
      for (const cell of index.byFamily.get(family) ?? []) found.push({ cell, holder });
    }
  }
  const familyKeys = found
    .sort((a, b) => a.cell.seq - b.cell.seq)
    .map(({ cell, holder }) => key(holder, cell));
  return { recentKeys, familyKeys };
}

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
  /**
   * The keys of the holders' newest boxed cells, newest first, at most `poolSize`, and of
   * their cells of the families (the first holder is the one the result is released to).
   */
  async function readKeys(
    holders: readonly string[],
    datasetId: string,
    families: readonly string[],
    poolSize: number,
  ): Promise<{ recentKeys: HolderKey[]; familyKeys: HolderKey[] }> {
    const holder = holders[0]!;
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
    const keyOf = (row: IdRow): HolderKey => ({
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
    return { recentKeys, familyKeys };
  }

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
      const indexes = held ? await heldIndexes(db, held, holders, datasetId) : undefined;
      const { recentKeys, familyKeys } = indexes
        ? keysFromIndexes(indexes, families, poolSize)
        : await readKeys(holders, datasetId, families, poolSize);
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
     * holder among the user's holders unless `holderListed` says it is there already. Where
     * `held` holds the holder's index, the cells are added to it as they are written; the
     * indexes of `otherHolders` (the user's, which the check read) stay as they are, since
     * nothing of theirs is written.
     */
    async record(
      reader: LedgerReader,
      datasetId: string,
      queryId: string,
      cells: ReadonlyArray<{ family: string; cell: unknown; patients: number }>,
      options: {
        holderListed?: boolean;
        held?: HeldReads;
        otherHolders?: readonly string[];
      } = {},
    ): Promise<void> {
      const { holder, userId } = reader;
      const cache = cellsCache(db);
      // The holder's index with the rows written, or one past the limit (not held, as a read
      // of that many would leave it): the limit holds however its cells came.
      const grown = (
        index: object,
        rows: ReadonlyArray<{ id: unknown; family: string; boxed: boolean }>,
      ) => {
        const held = index as LedgerIndex;
        if (held.tooMany || held.count + rows.length > heldIndexLimit) return new LedgerIndex(true);
        return extendIndex(
          held,
          rows.map((row) => ({ ...row, query_id: queryId })),
        )
          ? index
          : undefined;
      };
      const updates = new Map<
        string,
        (
          index: object,
          rows: ReadonlyArray<{ id: unknown; family: string; boxed: boolean }>,
        ) => object | undefined
      >([
        ...(options.otherHolders ?? [])
          .filter((other) => other !== holder)
          .map((other) => [indexKey(other, datasetId), (index: object) => index] as const),
        [indexKey(holder, datasetId), grown],
      ]);
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
        const insert = () =>
          (userId && start === 0 && !options.holderListed
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
            .returning(['id', 'family', 'released_at', sql<boolean>`cell ? 'box'`.as('boxed')])
            .execute();
        const rows = options.held
          ? await options.held.writeThrough<Awaited<ReturnType<typeof insert>>>(
              ledgerTables,
              updates,
              insert,
            )
          : await insert();
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
