import { sql } from 'kysely';
import type { Box } from '../query/ledger/regions.ts';
import type { CatalogDb } from './catalog.ts';

export type ReleasedCell = {
  id: string;
  family: string;
  queryId: string;
  /** What the cell was, for the reason shown when a later one is suppressed. */
  cell: unknown;
  patients: number;
  releasedAt: Date;
};

/** The release ledger: the aggregate cells a holder (a project or a user) has been shown. */
export function releasedCellsRepository(db: CatalogDb) {
  return {
    /** The holder's earlier cells of these families on the dataset, by family. */
    async earlier(
      holder: string,
      datasetId: string,
      families: readonly string[],
    ): Promise<Map<string, ReleasedCell[]>> {
      const found = new Map<string, ReleasedCell[]>();
      // In slices, so that a result with many groups stays within a statement's parameters.
      for (let start = 0; start < families.length; start += 1000) {
        const rows = await db
          .selectFrom('released_cells')
          .select(['id', 'family', 'query_id', 'cell', 'patients', 'released_at'])
          .where('holder', '=', holder)
          .where('dataset_id', '=', datasetId)
          .where('family', 'in', families.slice(start, start + 1000))
          .execute();
        for (const row of rows) {
          const list = found.get(row.family) ?? [];
          list.push({
            id: String(row.id),
            family: row.family,
            queryId: row.query_id,
            cell: row.cell,
            patients: Number(row.patients),
            releasedAt: row.released_at,
          });
          found.set(row.family, list);
        }
      }
      return found;
    },

    /**
     * The holder's most recent cells on the dataset that have a box (kept since issue 27), newest
     * first: what the set search combines a new result with.
     */
    async recentBoxed(
      holder: string,
      datasetId: string,
      limit: number,
    ): Promise<
      Array<
        ReleasedCell & { stored: { box?: Box; boxKey?: string; scope?: string; rows?: number } }
      >
    > {
      const rows = await db
        .selectFrom('released_cells')
        .select(['id', 'family', 'query_id', 'cell', 'patients', 'released_at'])
        .where('holder', '=', holder)
        .where('dataset_id', '=', datasetId)
        .where(sql<boolean>`cell ? 'box'`)
        .orderBy('id', 'desc')
        .limit(limit)
        .execute();
      return rows.map((row) => ({
        id: String(row.id),
        family: row.family,
        queryId: row.query_id,
        cell: row.cell,
        stored: row.cell as { box?: Box; boxKey?: string; scope?: string; rows?: number },
        patients: Number(row.patients),
        releasedAt: row.released_at,
      }));
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
