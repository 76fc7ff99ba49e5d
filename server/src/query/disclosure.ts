import type { AccessLevel } from '../catalog/grants-repository.ts';
import { hiddenPatients, hiddenRows, type ResultColumn } from './compile-query.ts';
import type { LedgerVerdict } from './release-ledger.ts';

/** One group of an aggregate result as the engine returned it, hidden counts included. */
export type AggregateRow = Record<string, unknown> & {
  [hiddenRows]: number;
  [hiddenPatients]: number;
};

export type HistogramBin = { bin: number; count: number | null; suppressed: boolean };

/** A group after disclosure control: `suppressed` groups have every measure emptied. */
export type DisclosedRow = Record<string, unknown> & { suppressed: boolean };

export type DisclosureRule = {
  rule:
    | 'small_cell'
    | 'complementary'
    | 'small_histogram_bin'
    | 'release_ledger'
    | 'noise'
    | 'row_access';
  /** In plain words, for the result's summary. */
  description: string;
  /** How many groups (or histogram bins) the rule emptied. */
  affected: number;
};

export type DisclosedResult = {
  rows: DisclosedRow[];
  /** The whole of the matching rows (the margin the groups add up to), after the same rules. */
  total: DisclosedRow;
  rules: DisclosureRule[];
};

/**
 * Disclosure control for aggregate results, applied by the service whatever the client asks.
 * For `aggregate` access:
 * - a group of fewer patients than the threshold is suppressed: its counts show as "<N" and its
 *   other measures (sums, means, percentiles, min, max, histograms) are emptied;
 * - complementary suppression: the groups add up to the published total, so where suppressed
 *   groups are fewer than two or together hold fewer rows than the threshold, the smallest
 *   published groups are suppressed too, until no suppressed group can be worked out by
 *   subtraction or narrowed to a small number;
 * - histogram bins follow the same two rules within their group.
 * `row` access sees the figures as they are: such users may read the rows themselves.
 */
export function applyDisclosureControl({
  groups,
  total,
  columns,
  level,
  threshold,
  grouped,
  ledger,
}: {
  groups: readonly AggregateRow[];
  total: AggregateRow;
  columns: readonly ResultColumn[];
  level: AccessLevel;
  threshold: number;
  /** Whether the query groups; an ungrouped result's one row is its total. */
  grouped: boolean;
  /** Cells the release ledger holds back (release-ledger.ts), suppressed like small ones. */
  ledger?: LedgerVerdict;
}): DisclosedResult {
  if (level === 'row') {
    return {
      rows: groups.map((group) => present(group, columns, false)),
      total: present(total, columns, false),
      rules: [
        {
          rule: 'row_access',
          description: 'No cells were suppressed: you have row-level access to this dataset.',
          affected: 0,
        },
      ],
    };
  }

  // Zero is no one and safe to show; one to threshold-1 patients is a small cell.
  const small = (row: AggregateRow) => row[hiddenPatients] > 0 && row[hiddenPatients] < threshold;
  const totalSmall = small(total);
  const totalSuppressed = totalSmall || ledger?.total === true;
  const bySize = groups.map((group) => totalSmall || small(group));
  const byLedger = groups.map(
    (_, index) => !bySize[index] && (totalSuppressed || ledger?.groups[index] === true),
  );
  const suppressed = bySize.map((isSmall, index) => isSmall || byLedger[index]!);
  const primary = bySize.filter(Boolean).length;
  const heldBack = byLedger.filter(Boolean).length + (totalSuppressed && !totalSmall ? 1 : 0);
  const complementary = totalSuppressed ? 0 : suppressAlongMargin(groups, suppressed, threshold);

  let bins = 0;
  const rows = groups.map((group, index) => {
    const row = present(group, columns, suppressed[index] ?? true);
    bins += protectHistograms(row, columns, threshold);
    return row;
  });
  const presentedTotal = present(total, columns, totalSuppressed);
  if (grouped) {
    // Each bin of the total adds up the same bin of every group: publishing it would let a
    // hidden bin be worked out down its column, so a grouped result has no total histogram.
    for (const column of columns)
      if (column.type === 'histogram') presentedTotal[column.name] = null;
  } else {
    bins += protectHistograms(presentedTotal, columns, threshold);
  }

  const rules: DisclosureRule[] = [
    {
      rule: 'small_cell',
      description: totalSmall
        ? `Fewer than ${threshold} patients match the query, so every figure is suppressed.`
        : primary === 0
          ? `Every group has at least ${threshold} patients, so nothing was suppressed.`
          : `${primary} ${primary === 1 ? 'group has' : 'groups have'} fewer than ${threshold} patients; ${primary === 1 ? 'its' : 'their'} counts show as <${threshold} and ${primary === 1 ? 'its' : 'their'} other measures are hidden.`,
      affected: primary + (totalSmall ? 1 : 0),
    },
  ];
  if (heldBack > 0) {
    rules.push({
      rule: 'release_ledger',
      description: `${heldBack} ${heldBack === 1 ? 'cell was' : 'cells were'} held back: ${ledger?.reason ?? 'compared with cells released to you before, they would reveal a small group'}.`,
      affected: heldBack,
    });
  }
  if (complementary > 0) {
    rules.push({
      rule: 'complementary',
      description: `${complementary} more ${complementary === 1 ? 'group was' : 'groups were'} suppressed so that the small ones cannot be worked out from the total.`,
      affected: complementary,
    });
  }
  if (bins > 0) {
    rules.push({
      rule: 'small_histogram_bin',
      description: `${bins} histogram ${bins === 1 ? 'bin was' : 'bins were'} hidden: fewer than ${threshold} rows, or needed to protect one that was.`,
      affected: bins,
    });
  }
  return { rows, total: presentedTotal, rules };
}

/**
 * Suppresses further groups, smallest first, until the suppressed ones are none, or at least two
 * holding together at least `threshold` rows. Returns how many it added.
 */
function suppressAlongMargin(
  groups: readonly AggregateRow[],
  suppressed: boolean[],
  threshold: number,
): number {
  const isSafe = () => {
    const hidden = groups.filter((_, index) => suppressed[index]);
    if (hidden.length === 0) return true;
    const rows = hidden.reduce((sum, group) => sum + group[hiddenRows], 0);
    return hidden.length >= 2 && rows >= threshold;
  };
  const bySize = groups
    .map((group, index) => ({ index, rows: group[hiddenRows] }))
    .sort((a, b) => a.rows - b.rows || a.index - b.index);
  let added = 0;
  for (const { index } of bySize) {
    if (isSafe()) break;
    if (suppressed[index]) continue;
    suppressed[index] = true;
    added += 1;
  }
  return added;
}

/** The row as the result holds it: hidden counts removed, and emptied where suppressed. */
function present(
  group: AggregateRow,
  columns: readonly ResultColumn[],
  suppressed: boolean,
): DisclosedRow {
  const row: DisclosedRow = { suppressed };
  for (const column of columns) {
    const value = group[column.name];
    if (column.kind !== 'measure' || !suppressed) {
      row[column.name] = column.type === 'histogram' ? toBins(value) : value;
    } else {
      row[column.name] = null;
    }
  }
  return row;
}

function toBins(value: unknown): HistogramBin[] | null {
  if (!Array.isArray(value)) return null;
  return (value as Array<{ key: number; value: number }>)
    .map((entry) => ({ bin: Number(entry.key), count: Number(entry.value), suppressed: false }))
    .sort((a, b) => a.bin - b.bin);
}

/** Hides small histogram bins of a published group, and enough others to protect them. */
function protectHistograms(
  row: DisclosedRow,
  columns: readonly ResultColumn[],
  threshold: number,
): number {
  let hidden = 0;
  for (const column of columns) {
    const bins = row[column.name] as HistogramBin[] | null;
    if (column.type !== 'histogram' || !bins) continue;
    const suppressed = bins.map((bin) => (bin.count ?? 0) < threshold);
    suppressAlongMargin(
      bins.map((bin) => ({ [hiddenRows]: bin.count ?? 0, [hiddenPatients]: 0 })),
      suppressed,
      threshold,
    );
    bins.forEach((bin, index) => {
      if (!suppressed[index]) return;
      bin.suppressed = true;
      bin.count = null;
      hidden += 1;
    });
  }
  return hidden;
}
