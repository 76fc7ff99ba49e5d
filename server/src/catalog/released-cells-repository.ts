import { sql } from 'kysely';
import { LRUCache } from 'lru-cache';
import type { CatalogDb } from './catalog.ts';
import type { Box } from './cell-box.ts';

export type ReleasedCell = {
  id: string;
  family: string;
  queryId: string;
  /** What the cell was, for the reason shown when a later one is suppressed. */
  cell: unknown;
  patients: number;
  releasedAt: Date;
};

/** A cell that has a box, and what was stored of it. */
export type BoxedCell = ReleasedCell & {
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

/** The release ledger: the aggregate cells a holder (a project or a user) has been shown. */
export function releasedCellsRepository(db: CatalogDb) {
  return {
    /**
     * What a new result is checked against, in one read: the holder's earlier cells of these
     * families on the dataset, by family, and the holder's most recent cells that have a box
     * (kept since issue 27), newest first, at most `poolSize`: what the set search combines a
     * new result with.
     */
    async relevant(
      holder: string,
      datasetId: string,
      families: readonly string[],
      poolSize: number,
    ): Promise<{ earlier: Map<string, ReleasedCell[]>; pool: BoxedCell[] }> {
      // First the ids only, then the cells not already in memory. The two reads of ids go in
      // one statement of two branches, each planned on its own index (one condition with both
      // was planned several times slower): a round trip less on every check.
      const ofHolder = () =>
        db
          .selectFrom('released_cells')
          .select(['id', 'query_id', 'family'])
          .where('holder', '=', holder)
          .where('dataset_id', '=', datasetId);
      const ofFamily = (slice: readonly string[]) =>
        ofHolder()
          .where('family', 'in', slice)
          .select(sql<boolean>`false`.as('recent'));
      // In slices, so that a result with many groups stays within a statement's parameters.
      const slices: string[][] = [];
      for (let start = 0; start < families.length; start += 1000) {
        slices.push(families.slice(start, start + 1000));
      }
      const recentPool = db
        .selectFrom((eb) =>
          eb
            .selectFrom('released_cells')
            .select(['id', 'query_id', 'family'])
            .where('holder', '=', holder)
            .where('dataset_id', '=', datasetId)
            .where(sql<boolean>`cell ? 'box'`)
            .orderBy('id', 'desc')
            .limit(poolSize)
            .as('pool'),
        )
        .select(['pool.id', 'pool.query_id', 'pool.family', sql<boolean>`true`.as('recent')]);
      const [firstSlice, ...moreSlices] = slices;
      const first = await (
        firstSlice ? recentPool.unionAll(ofFamily(firstSlice)) : recentPool
      ).execute();
      // Newest first; sorted here, as an ORDER BY over both branches sorted them all.
      const recent = first
        .filter((row) => row.recent)
        .sort((a, b) => (BigInt(b.id) > BigInt(a.id) ? 1 : BigInt(b.id) < BigInt(a.id) ? -1 : 0));
      const keyOf = (row: { id: unknown; query_id: string; family: string }): CellKey => ({
        id: String(row.id),
        queryId: row.query_id,
        family: row.family,
      });
      const familyKeys = first.filter((row) => !row.recent).map(keyOf);
      for (const slice of moreSlices) {
        const rows = await ofHolder().where('family', 'in', slice).execute();
        familyKeys.push(...rows.map(keyOf));
      }
      const recentKeys = recent.map(keyOf);
      const ofFamilies = familyKeys.map((key) => key.id);
      const recentIds = recentKeys.map((key) => key.id);
      const cells = await cellsById(db, [...recentKeys, ...familyKeys]);
      const earlier = new Map<string, ReleasedCell[]>();
      for (const id of ofFamilies) {
        const cell = cells.get(id)!;
        earlier.set(cell.family, [...(earlier.get(cell.family) ?? []), cell]);
      }
      // The recent cells, newest first: the pool the set search combines a new result with.
      const pool = recentIds.map((id) => {
        const cell = cells.get(id)!;
        return { ...cell, stored: cell.cell as BoxedCell['stored'] };
      });
      return { earlier, pool };
    },

    async record(
      holder: string,
      datasetId: string,
      queryId: string,
      cells: ReadonlyArray<{ family: string; cell: unknown; patients: number }>,
    ): Promise<void> {
      const cache = cellsCache(db);
      for (let start = 0; start < cells.length; start += 500) {
        const slice = cells.slice(start, start + 500);
        if (slice.length === 0) break;
        const stored = slice.map((cell) => JSON.stringify(cell.cell));
        const rows = await db
          .insertInto('released_cells')
          .values(
            slice.map((cell, index) => ({
              holder,
              dataset_id: datasetId,
              family: cell.family,
              query_id: queryId,
              cell: stored[index]!,
              patients: cell.patients,
            })),
          )
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
