import { createHash } from 'node:crypto';
import { canonicalJson, type QuerySpec } from '@medlake/shared';
import { releasedCellsRepository } from '../catalog/released-cells-repository.ts';
import type { Platform } from '../platform.ts';
import { hiddenPatients, type ResultColumn } from './compile-query.ts';
import type { AggregateRow, DisclosedRow } from './disclosure.ts';

/** The cells of a result the ledger holds back, and why. */
export type LedgerVerdict = {
  groups: boolean[];
  total: boolean;
  /** In plain words, for the result's summary; absent when nothing was held back. */
  reason?: string;
};

type Cell = { family: string; cell: { groups: string[]; values: Record<string, unknown> | null } };

/**
 * A cell's family: the same groups with the same values, whatever the filters, the releases
 * or the measures. Two cells of one family count patients of sets that may overlap, and their
 * difference is a group of its own.
 */
function cellOf(datasetId: string, spec: QuerySpec, values: Record<string, unknown> | null): Cell {
  const cell = { groups: spec.groupBy.map((group) => canonicalJson(group)), values };
  const family = createHash('sha256')
    .update(canonicalJson({ dataset: datasetId, ...cell }))
    .digest('hex');
  return { family, cell };
}

function groupValues(row: Record<string, unknown>, columns: readonly ResultColumn[]) {
  return Object.fromEntries(
    columns
      .filter((column) => column.kind === 'group')
      .map((column) => [column.name, row[column.name]]),
  );
}

/**
 * The release ledger (issue 10): before an aggregate result is released to a holder, each of
 * its cells is compared with the cells of the same family released to that holder before. A
 * cell whose patient count differs from an earlier one by 1 to threshold−1 is held back: the
 * two together would reveal that small a group (months 1..N against 1..N+1, every hospital
 * against all but one, two overlapping filters). The same count again reveals nothing and is
 * released. `record` writes the cells that were released.
 */
export async function checkReleaseLedger(
  platform: Platform,
  input: {
    holder: string;
    datasetId: string;
    spec: QuerySpec;
    columns: readonly ResultColumn[];
    groups: readonly AggregateRow[];
    total: AggregateRow;
    threshold: number;
  },
): Promise<{
  verdict: LedgerVerdict;
  record(queryId: string, rows: readonly DisclosedRow[], totalShown: boolean): Promise<void>;
}> {
  const { holder, datasetId, spec, columns, threshold } = input;
  const grouped = spec.groupBy.length > 0;
  const groupCells = input.groups.map((group) =>
    cellOf(datasetId, spec, groupValues(group, columns)),
  );
  const totalCell = cellOf(datasetId, { ...spec, groupBy: [] }, null);
  const ledger = releasedCellsRepository(platform.catalog.db);
  const earlier = await ledger.earlier(holder, datasetId, [
    totalCell.family,
    ...(grouped ? groupCells.map((cell) => cell.family) : []),
  ]);

  let first: { queryId: string; releasedAt: Date } | undefined;
  const revealing = (cell: Cell, patients: number) => {
    const clash = (earlier.get(cell.family) ?? []).find((old) => {
      const difference = Math.abs(patients - old.patients);
      return difference > 0 && difference < threshold;
    });
    if (clash && (!first || clash.releasedAt < first.releasedAt)) first = clash;
    return clash !== undefined;
  };
  const verdict: LedgerVerdict = {
    total: revealing(totalCell, Number(input.total[hiddenPatients])),
    groups: grouped
      ? input.groups.map((group, index) =>
          revealing(groupCells[index]!, Number(group[hiddenPatients])),
        )
      : [],
  };
  if (first) {
    verdict.reason = `compared with cells released to you before (the earliest on ${first.releasedAt.toISOString().slice(0, 10)}, query ${first.queryId}), they would reveal a group of fewer than ${threshold} patients`;
  }

  return {
    verdict,
    async record(queryId, rows, totalShown) {
      // The rows as released are in the result's order; they are matched back by their values.
      const byFamily = new Map(
        input.groups.map((group, index) => [groupCells[index]!.family, group] as const),
      );
      const released = [];
      for (const row of grouped ? rows : []) {
        if (row.suppressed) continue;
        const cell = cellOf(datasetId, spec, groupValues(row, columns));
        const group = byFamily.get(cell.family);
        if (group) released.push({ ...cell, patients: Number(group[hiddenPatients]) });
      }
      if (totalShown) {
        released.push({ ...totalCell, patients: Number(input.total[hiddenPatients]) });
      }
      await ledger.record(holder, datasetId, queryId, released);
    },
  };
}
