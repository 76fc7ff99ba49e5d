import type { CatalogDb } from './catalog.ts';

export type ReleasedCell = {
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
          .select(['family', 'query_id', 'cell', 'patients', 'released_at'])
          .where('holder', '=', holder)
          .where('dataset_id', '=', datasetId)
          .where('family', 'in', families.slice(start, start + 1000))
          .execute();
        for (const row of rows) {
          const list = found.get(row.family) ?? [];
          list.push({
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
