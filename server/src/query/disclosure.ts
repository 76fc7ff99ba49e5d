import type { AccessLevel } from '../catalog/grants-repository.ts';
import { hiddenPatients, type hiddenRows, type ResultColumn } from './compile-query.ts';

/**
 * The cells of a result the release ledger (release-ledger.ts) holds back, and why. It is
 * defined here, where it is applied, so that the ledger builds on disclosure and not both ways.
 */
export type LedgerVerdict = {
  groups: boolean[];
  total: boolean;
  /** In plain words, for the result's summary; absent when nothing was held back. */
  reason?: string;
};

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
    | 'small_histogram_bin'
    | 'single_record_measure'
    | 'release_ledger'
    | 'noise'
    | 'row_access';
  /** In plain words, for the result's summary. */
  description: string;
  /** How many groups (or histogram bins, or measures) the rule withheld or emptied. */
  affected: number;
};

export type DisclosedResult = {
  /** The groups shown, in the engine's order; groups under the threshold are not among them. */
  rows: DisclosedRow[];
  /** The margin the shown groups add up to, after the same rules. */
  total: DisclosedRow;
  /** How many groups were left out, labels included, for having too few patients. */
  withheld: number;
  rules: DisclosureRule[];
};

/**
 * Disclosure control for aggregate results, applied by the service whatever the client asks
 * (docs/privacy.md, "What aggregate access guarantees"). For `aggregate` access:
 * - a group of 1 to threshold−1 distinct patients is withheld: it is not in the result at all,
 *   labels included, since with fine groupings the labels alone are the records;
 * - the total must cover only the groups shown. The caller runs the query's `publishedTotal`
 *   when a group is withheld (run-aggregate.ts), so there is no remainder to work out; a total
 *   of fewer patients than the threshold suppresses everything;
 * - a group (or total) the release ledger holds back is suppressed, label shown, and the total
 *   with it (the total minus the groups shown would give it back);
 * - a histogram bin of fewer patients than the threshold is hidden, and while no hidden bin of
 *   that group holds the threshold, the next smallest is hidden too: the group's row count
 *   minus the bins shown is then a figure about at least threshold patients;
 * - a percentile is emptied unless at least threshold patients certainly have a value at or
 *   below it and threshold patients one at or above it: otherwise a few patients' values decide
 *   it. Minimum and maximum are refused earlier (policy.ts): one patient decides them.
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
      withheld: 0,
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
  const shown = grouped
    ? groups
        .map((group, index) => ({ group, held: ledger?.groups[index] === true }))
        .filter(({ group }) => !totalSmall && !small(group))
    : [];
  const withheld = grouped ? groups.length - shown.length : 0;
  const heldGroups = shown.filter(({ held }) => held).length;
  const totalHeld = !totalSmall && (ledger?.total === true || heldGroups > 0);
  const totalSuppressed = totalSmall || totalHeld;

  const counts = { bins: 0, percentiles: 0 };
  const publish = (group: AggregateRow, suppressed: boolean, isTotal: boolean) => {
    const row = present(group, columns, suppressed);
    if (suppressed) return row;
    counts.bins += protectHistograms(row, group, columns, threshold);
    counts.percentiles += protectPercentiles(row, group, columns, threshold, isTotal);
    return row;
  };
  // A total held back by the ledger would come back as the sum of its groups.
  const rows = grouped
    ? shown.map(({ group, held }) => publish(group, held || ledger?.total === true, false))
    : [publish(total, totalSuppressed, true)];
  const presentedTotal = grouped ? publish(total, totalSuppressed, true) : { ...rows[0]! };
  if (grouped) {
    // Each bin of the total adds up the same bin of every group: publishing it would let a
    // hidden bin be worked out down its column, so a grouped result has no total histogram.
    for (const column of columns)
      if (column.type === 'histogram') presentedTotal[column.name] = null;
  }

  // No one matching is shown as it is; saying "at least threshold patients" of it would be false.
  const nobody = total[hiddenPatients] === 0;
  const rules: DisclosureRule[] = [
    {
      rule: 'small_cell',
      description: totalSmall
        ? `Fewer than ${threshold} patients match the query, so every figure is suppressed.`
        : nobody
          ? 'No patient matches the query, so there is nothing to suppress.'
          : withheld === 0
            ? grouped
              ? `Every group has at least ${threshold} patients, so none was left out.`
              : `At least ${threshold} patients match the query.`
            : `${withheld.toLocaleString('en-US')} ${withheld === 1 ? 'group has' : 'groups have'} fewer than ${threshold} patients and ${withheld === 1 ? 'is' : 'are'} left out, labels included.`,
      affected: totalSmall ? 1 : withheld,
    },
  ];
  const heldBack = (ledger?.total === true ? rows.length : heldGroups) + (totalHeld ? 1 : 0);
  if (heldBack > 0) {
    rules.push({
      rule: 'release_ledger',
      description: `${heldBack} ${heldBack === 1 ? 'cell was' : 'cells were'} held back: ${ledger?.reason ?? 'compared with cells released to you before, they would reveal a small group'}.`,
      affected: heldBack,
    });
  }
  if (counts.bins > 0) {
    rules.push({
      rule: 'small_histogram_bin',
      description: `${counts.bins} histogram ${counts.bins === 1 ? 'bin was' : 'bins were'} hidden: fewer than ${threshold} patients, or needed to protect one that was.`,
      affected: counts.bins,
    });
  }
  if (counts.percentiles > 0) {
    rules.push({
      rule: 'single_record_measure',
      description: `${counts.percentiles} ${counts.percentiles === 1 ? 'percentile was' : 'percentiles were'} left empty: fewer than ${threshold} patients lie on one side of ${counts.percentiles === 1 ? 'it' : 'them'}, so a few patients' values would decide ${counts.percentiles === 1 ? 'it' : 'them'}.`,
      affected: counts.percentiles,
    });
  }
  return { rows, total: presentedTotal, withheld, rules };
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

/**
 * Hides the histogram bins of a shown group that hold fewer patients than the threshold, and
 * then, while no hidden bin holds the threshold, the bin of fewest patients among those shown:
 * the group's rows minus the bins shown is then a figure about at least threshold patients.
 */
function protectHistograms(
  row: DisclosedRow,
  group: AggregateRow,
  columns: readonly ResultColumn[],
  threshold: number,
): number {
  let hidden = 0;
  for (const column of columns) {
    const bins = row[column.name] as HistogramBin[] | null;
    if (column.type !== 'histogram' || !bins) continue;
    const patientsOf = new Map(
      (toBins(column.binPatients ? group[column.binPatients] : null) ?? []).map((bin) => [
        bin.bin,
        bin.count ?? 0,
      ]),
    );
    // Without patient counts (not compiled for aggregate access), a bin's rows stand in for
    // its patients: never fewer, so this errs on the side of hiding.
    const patients = (bin: HistogramBin) => patientsOf.get(bin.bin) ?? bin.count ?? 0;
    const hide = new Set(bins.filter((bin) => patients(bin) < threshold));
    if (hide.size > 0 && ![...hide].some((bin) => patients(bin) >= threshold)) {
      const next = bins
        .filter((bin) => !hide.has(bin))
        .sort((a, b) => patients(a) - patients(b) || a.bin - b.bin)[0];
      if (next) hide.add(next);
    }
    for (const bin of hide) {
      bin.suppressed = true;
      bin.count = null;
      hidden += 1;
    }
  }
  return hidden;
}

/**
 * Empties the percentiles of a shown row that fewer than threshold patients on either side
 * would decide (see percentileIsDecidedByEnough).
 */
function protectPercentiles(
  row: DisclosedRow,
  group: AggregateRow,
  columns: readonly ResultColumn[],
  threshold: number,
  isTotal: boolean,
): number {
  let emptied = 0;
  for (const column of columns) {
    if (column.fn !== 'percentile' || row[column.name] == null) continue;
    // A noisy answer's percentile is protected by its noise, not by exact counts.
    if (column.noisyBins) continue;
    if (percentileIsDecidedByEnough(column, group, threshold, isTotal)) continue;
    row[column.name] = null;
    emptied += 1;
  }
  return emptied;
}

/**
 * Whether a percentile shown on this row was judged with the catalog's bound on the values one
 * patient has and could not be shown safe by it: counting per patient may still show it safe,
 * so the caller compiles the query without the bound and runs it again. Only rows that would
 * be shown count: the total, and groups of at least threshold patients.
 */
export function percentilesNeedCounting(
  groups: readonly AggregateRow[],
  total: AggregateRow,
  columns: readonly ResultColumn[],
  threshold: number,
): boolean {
  const bounded = columns.filter(
    (column) => column.spread !== undefined && 'atMost' in column.spread.perPatient,
  );
  if (bounded.length === 0) return false;
  const undecided = (group: AggregateRow, isTotal: boolean) =>
    group[hiddenPatients] >= threshold &&
    bounded.some(
      (column) =>
        group[column.name] != null &&
        !percentileIsDecidedByEnough(column, group, threshold, isTotal),
    );
  return undecided(total, true) || groups.some((group) => undecided(group, false));
}

/**
 * A continuous percentile p of n values sits at position h = p·(n−1) of the sorted values: at
 * least ⌊h⌋+1 values lie at or below it and n−⌈h⌉ at or above. One patient has at most m of
 * them (the most values of one patient in the group; in all the matching rows for the total,
 * whose patients span groups; or the catalog's bound on both), so those values are of at least
 * ⌈count ÷ m⌉ patients. Both must reach the threshold.
 */
function percentileIsDecidedByEnough(
  column: ResultColumn,
  group: AggregateRow,
  threshold: number,
  isTotal: boolean,
): boolean {
  // Without the spread (not compiled for aggregate access), nothing shows it is safe.
  const spread = column.spread;
  if (!spread || column.p === undefined) return false;
  const values = Number(group[spread.values] ?? 0);
  const most = spread.perPatient;
  const perPatient =
    'atMost' in most ? most.atMost : Number(group[isTotal ? most.inAll : most.inGroup] ?? 0);
  const position = column.p * (values - 1);
  const below = Math.floor(position) + 1;
  const above = values - Math.ceil(position);
  const enough = (count: number) => perPatient > 0 && Math.ceil(count / perPatient) >= threshold;
  return enough(below) && enough(above);
}
