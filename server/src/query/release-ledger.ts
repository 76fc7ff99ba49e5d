import { createHash } from 'node:crypto';
import { canonicalJson, type Filter, type Group, type QuerySpec } from '@medlake/shared';
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

type Cell = { family: string; cell: { groups: string[]; values: unknown[] | null } };

/** A group as the ledger compares it: what it groups by, whatever its result column is named. */
function groupKey(group: Group): string {
  return canonicalJson({ ...group, as: undefined });
}

const sha256 = (value: unknown) => createHash('sha256').update(canonicalJson(value)).digest('hex');

/**
 * A cell's family: the same groups with the same values, whatever the filters, the releases,
 * the measures or the names of the result columns. Two cells of one family count patients of
 * sets that may overlap, and their difference is a group of its own.
 */
function cellOf(datasetId: string, spec: QuerySpec, values: unknown[] | null): Cell {
  const cell = { groups: spec.groupBy.map(groupKey), values: values?.map(normalLabel) ?? null };
  return { family: sha256({ dataset: datasetId, ...cell }), cell };
}

/** A group label as stored and compared: numbers to 12 digits, as engines' doubles differ. */
function normalLabel(value: unknown): unknown {
  if (typeof value === 'number') return Number(value.toPrecision(12));
  if (typeof value === 'bigint') return Number(value);
  return value ?? null;
}

const labelsKey = (values: readonly unknown[]) => JSON.stringify(values.map(normalLabel));

function groupValues(row: Record<string, unknown>, columns: readonly ResultColumn[]): unknown[] {
  return columns.filter((column) => column.kind === 'group').map((column) => row[column.name]);
}

/**
 * A filter written so that the same rows give the same text: conditions of an `and` or `or`
 * in a fixed order, lists of codes and values sorted.
 */
function normalFilter(filter: Filter): unknown {
  if ('and' in filter) return { and: filter.and.map(normalFilter).sort(byText) };
  if ('or' in filter) return { or: filter.or.map(normalFilter).sort(byText) };
  if ('not' in filter) return { not: normalFilter(filter.not) };
  if ('codes' in filter) return { ...filter, codes: [...new Set(filter.codes)].sort() };
  if ('values' in filter) return { ...filter, values: [...new Set(filter.values)].sort(byText) };
  return filter;
}

function byText(a: unknown, b: unknown): number {
  const [x, y] = [canonicalJson(a), canonicalJson(b)];
  return x < y ? -1 : x > y ? 1 : 0;
}

/**
 * What a result's rows are, before grouping: the normalised filter and cohort over the same
 * releases. Two results of one such key group the very same rows, however differently.
 */
function rowsKeyOf(datasetId: string, spec: QuerySpec, releaseIds: readonly string[]): string {
  return sha256({
    kind: 'result',
    dataset: datasetId,
    where: spec.where ? normalFilter(spec.where) : null,
    cohort: spec.cohort
      ? {
          ...spec.cohort,
          criteria: spec.cohort.criteria.map((criterion) => ({
            ...criterion,
            where: normalFilter(criterion.where),
          })),
        }
      : null,
    releases: [...releaseIds].sort(),
  });
}

/** What the ledger keeps of a released result, besides its cells: for the marginal check. */
type ResultRecord = { groups: string[]; released: unknown[][]; totalReleased: boolean };

/** The patients of the withheld groups of a grouping, per value of some of its groups. */
export type WithheldPatients = (
  groupBy: readonly Group[],
  coarse: readonly number[],
) => Promise<Array<{ values: unknown[]; patients: number }>>;

/**
 * The release ledger: before an aggregate result is released to a holder, it is checked
 * against what that holder was released before, in two ways.
 * - Cells of one family (the same groups and values, issue 10): a cell whose patient count
 *   differs from an earlier one by 1 to threshold−1 is held back, since the two together would
 *   reveal that small a group (months 1..N against 1..N+1, every hospital against all but one,
 *   two overlapping filters). The same count again reveals nothing and is released.
 * - Groupings of the same rows (issue 19): an earlier result of the same filter, cohort and
 *   releases, grouped by some of this one's groups (a margin, or the total) or by more of them.
 *   A coarse cell minus the fine cells shown inside it is what the fine result withheld there;
 *   where that holds 1 to threshold−1 patients (counted by the engine: `withheldPatients`) and
 *   both were released, the later one is held back.
 * `record` writes what was released.
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
    releaseIds: readonly string[];
    withheldPatients: WithheldPatients;
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
  const resultFamily = rowsKeyOf(datasetId, spec, input.releaseIds);
  const ledger = releasedCellsRepository(platform.catalog.db);
  const earlier = await ledger.earlier(holder, datasetId, [
    totalCell.family,
    resultFamily,
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
  const labels = input.groups.map((group) => groupValues(group, columns));
  // Earlier results of one grouping ask the engine the same question: it is asked once.
  const counted = new Map<string, ReturnType<WithheldPatients>>();
  const withheldPatients: WithheldPatients = (groupBy, coarse) => {
    const key = canonicalJson({ groups: groupBy.map(groupKey), coarse });
    const found = counted.get(key) ?? input.withheldPatients(groupBy, coarse);
    counted.set(key, found);
    return found;
  };
  for (const old of earlier.get(resultFamily) ?? []) {
    const held = await marginalClashes(old.cell as ResultRecord, {
      spec,
      labels: grouped ? labels : [],
      threshold,
      withheldPatients,
    });
    if (held.total) verdict.total = true;
    held.groups.forEach((index) => (verdict.groups[index] = true));
    if ((held.total || held.groups.length > 0) && (!first || old.releasedAt < first.releasedAt)) {
      first = old;
    }
  }
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
      const shownLabels: unknown[][] = [];
      for (const row of grouped ? rows : []) {
        if (row.suppressed) continue;
        const cell = cellOf(datasetId, spec, groupValues(row, columns));
        const group = byFamily.get(cell.family);
        if (group) released.push({ ...cell, patients: Number(group[hiddenPatients]) });
        shownLabels.push(cell.cell.values ?? []);
      }
      if (totalShown) {
        released.push({ ...totalCell, patients: Number(input.total[hiddenPatients]) });
      }
      const record: ResultRecord = {
        groups: spec.groupBy.map(groupKey),
        released: shownLabels,
        totalReleased: totalShown,
      };
      released.push({
        family: resultFamily,
        cell: record,
        patients: Number(input.total[hiddenPatients]),
      });
      await ledger.record(holder, datasetId, queryId, released);
    },
  };
}

/**
 * Which of this result's cells an earlier result of the same rows makes revealing: the earlier
 * one grouped by some of this one's groups (its cells are margins of this one's), or by more
 * (this one's cells are margins of its). In both, a margin minus the finer cells shown inside
 * it is the withheld finer cells: held back where that is 1 to threshold−1 patients.
 */
async function marginalClashes(
  old: ResultRecord,
  input: {
    spec: QuerySpec;
    /** This result's group labels, in the order of its groups; none when ungrouped. */
    labels: readonly unknown[][];
    threshold: number;
    withheldPatients: WithheldPatients;
  },
): Promise<{ total: boolean; groups: number[] }> {
  const { spec, labels, threshold } = input;
  const ours = spec.groupBy.map(groupKey);
  const none = { total: false, groups: [] as number[] };
  const sameSet =
    old.groups.length === ours.length && old.groups.every((key) => ours.includes(key));
  const small = (patients: number) => patients > 0 && patients < threshold;
  if (sameSet) return none;

  if (old.groups.every((key) => ours.includes(key))) {
    // The earlier result is a margin of this one: hold back this one's groups inside a margin
    // cell whose withheld part is small, if that cell was released.
    const coarse = old.groups.map((key) => ours.indexOf(key));
    const withheld = await input.withheldPatients(spec.groupBy, coarse);
    const released = new Set(
      old.groups.length === 0
        ? old.totalReleased
          ? [labelsKey([])]
          : []
        : old.released.map((values) => labelsKey(values)),
    );
    const revealing = new Set(
      withheld
        .filter((cell) => small(cell.patients) && released.has(labelsKey(cell.values)))
        .map((cell) => labelsKey(cell.values)),
    );
    const groups = labels.flatMap((values, index) =>
      revealing.has(labelsKey(coarse.map((position) => values[position]))) ? [index] : [],
    );
    return { total: false, groups };
  }

  if (ours.every((key) => old.groups.includes(key))) {
    // This result is a margin of the earlier one: hold back this one's cells whose withheld
    // part in the earlier grouping is small, if the earlier one showed cells inside them.
    const fine = old.groups.map((key) => JSON.parse(key) as Group);
    const coarse = ours.map((key) => old.groups.indexOf(key));
    const withheld = await input.withheldPatients(fine, coarse);
    const shownInside = new Set(
      old.released.map((values) => labelsKey(coarse.map((position) => values[position]))),
    );
    const revealing = new Set(
      withheld
        .filter((cell) => small(cell.patients) && shownInside.has(labelsKey(cell.values)))
        .map((cell) => labelsKey(cell.values)),
    );
    if (ours.length === 0) return { total: revealing.size > 0, groups: [] };
    const groups = labels.flatMap((values, index) =>
      revealing.has(labelsKey(values)) ? [index] : [],
    );
    return { total: false, groups };
  }
  return none;
}
