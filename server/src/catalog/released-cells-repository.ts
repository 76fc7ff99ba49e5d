import { sql } from 'kysely';
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
      const earlier = new Map<string, ReleasedCell[]>();
      const boxed = new Map<string, BoxedCell>();
      const recent = db
        .selectFrom('released_cells')
        .select('id')
        .where('holder', '=', holder)
        .where('dataset_id', '=', datasetId)
        .where(sql<boolean>`cell ? 'box'`)
        .orderBy('id', 'desc')
        .limit(poolSize);
      // In slices, so that a result with many groups stays within a statement's parameters;
      // the first slice brings the recent cells along.
      for (let start = 0; start === 0 || start < families.length; start += 1000) {
        const slice = families.slice(start, start + 1000);
        const inSlice = new Set(slice);
        const rows = await db
          .selectFrom('released_cells')
          .select(['id', 'family', 'query_id', 'cell', 'patients', 'released_at'])
          .where('holder', '=', holder)
          .where('dataset_id', '=', datasetId)
          .where((eb) =>
            eb.or([
              ...(slice.length > 0 ? [eb('family', 'in', slice)] : []),
              ...(start === 0 ? [eb('id', 'in', recent)] : []),
            ]),
          )
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
          if (inSlice.has(row.family)) {
            const list = earlier.get(row.family) ?? [];
            list.push(cell);
            earlier.set(row.family, list);
          }
          const stored = row.cell as BoxedCell['stored'];
          if (stored.box !== undefined) boxed.set(cell.id, { ...cell, stored });
        }
      }
      // The recent cells are the newest boxed ones read: a boxed cell of the families that is
      // not among them is older than all of them.
      const pool = [...boxed.values()]
        .sort((a, b) => Number(BigInt(b.id) - BigInt(a.id)))
        .slice(0, poolSize);
      return { earlier, pool };
    },

    async record(
      holder: string,
      datasetId: string,
      queryId: string,
      cells: ReadonlyArray<{ family: string; cell: unknown; patients: number }>,
    ): Promise<void> {
      for (let start = 0; start < cells.length; start += 500) {
        const slice = cells.slice(start, start + 500);
        if (slice.length === 0) break;
        await db
          .insertInto('released_cells')
          .values(
            slice.map((cell) => ({
              holder,
              dataset_id: datasetId,
              family: cell.family,
              query_id: queryId,
              cell: JSON.stringify(cell.cell),
              patients: cell.patients,
            })),
          )
          .execute();
      }
    },
  };
}
