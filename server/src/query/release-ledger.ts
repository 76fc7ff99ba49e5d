import { LRUCache } from 'lru-cache';
import { canonicalJson, measureOutputName, type Group, type QuerySpec } from '@medlake/shared';
import { releasedCellsRepository } from '../catalog/released-cells-repository.ts';
import { releasesRepository } from '../catalog/releases-repository.ts';
import type { RunOptions } from '../engines/types.ts';
import { releaseFileLocations, releaseFolder } from '../ingest/lake-keys.ts';
import type { PlatformParts } from '../platform-parts.ts';
import {
  hiddenPatients,
  hiddenRows,
  type CompileContext,
  type ResultColumn,
} from './compile-query.ts';
import type { AggregateRow, DisclosedRow, HistogramBin, LedgerVerdict } from './disclosure.ts';
import {
  cellBox,
  normalCohort,
  normalFilter,
  sha256,
  shapeOf,
  type ReleaseSlot,
} from './ledger/cells.ts';
import { ledgerLockKeys, lockReleaseLedger } from './ledger/lock.ts';
import { between, constraintKey, intersect, isEmpty, union, type Box } from './ledger/regions.ts';
import {
  defaultSearchBounds,
  type Candidate,
  type SearchBounds,
  type SearchCell,
} from './ledger/search.ts';
import { searchInWorker } from './ledger/search-threads.ts';
import { askTheEngine, type TruthQuestion } from './ledger/truth.ts';
import { mostRowsPerPatient as mostRowsAcross } from './plan-query.ts';

type Cell = { family: string; cell: { groups: string[]; values: unknown[] | null } };

/** A group as the ledger compares it: what it groups by, whatever its result column is named. */
function groupKey(group: Group): string {
  return canonicalJson({ ...group, as: undefined });
}

/**
 * A cell's family (`groups`: the spec's groups, each as groupKey gives it): the same groups with the same values, whatever the filters, the releases,
 * the measures or the names of the result columns. Two cells of one family count patients of
 * sets that may overlap, and their difference is a group of its own.
 */
function cellOf(datasetId: string, groups: string[], values: unknown[] | null): Cell {
  const cell = { groups, values: values?.map(normalLabel) ?? null };
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
 * What a result's rows are, before grouping: the normalised filter and cohort over the same
 * releases. Two results of one such key group the very same rows, however differently.
 */
function rowsKeyOf(datasetId: string, spec: QuerySpec, releaseIds: readonly string[]): string {
  return sha256({
    kind: 'result',
    dataset: datasetId,
    where: spec.where ? normalFilter(spec.where) : null,
    cohort: normalCohort(spec.cohort),
    releases: [...releaseIds].sort(),
  });
}

/** What the ledger keeps of a released result, besides its cells: for the marginal check. */
type ResultRecord = {
  groups: string[];
  released: unknown[][];
  totalReleased: boolean;
  /** How many of its groups held 1 to threshold−1 patients (not kept before 2026-12-06). */
  smallGroups?: number;
};

/** The patients of the withheld groups of a grouping, per value of some of its groups. */
export type WithheldPatients = (
  groupBy: readonly Group[],
  coarse: readonly number[],
) => Promise<Array<{ values: unknown[]; patients: number }>>;

/** What one check did and how long it took, for the log and the bench. */
export type LedgerStatistics = {
  /** Earlier cells of the holder that the set search combined (at most `poolSize`). */
  earlierCells: number;
  /** Combinations evaluated over the boxes, and those the engine (or the counts) judged. */
  evaluated: number;
  candidates: number;
  engineStatements: number;
  /** New cells not reached within the bound of combinations: held back. */
  unexamined: number;
  milliseconds: number;
};

/** The holder's most recent cells the set search combines a new result with (docs/privacy.md). */
export const ledgerPoolSize = 1000;

/**
 * The release ledger: before an aggregate result is released to a holder, it is checked
 * against what that holder was released before, what the user who asks was released under any
 * holder, and what every holder the user has been with (a project they asked in or joined) was
 * released, whoever asked. Checks of one holder, and of one user, run one at a time
 * (ledger/lock.ts): the lock is taken here and must be let go with `release`, after `record`.
 * - Sets (issue 27): every released cell is a box (the releases read, a constraint per column
 *   from the filter and the group's labels) within a scope (the rest of the filter, the
 *   cohort). Every figure of a cell, patients, rows, sums, is a linear function of the rows
 *   the box holds, so signed sums of cells of one scope are figures of the rows where the sum
 *   is not zero. The search (ledger/search.ts) finds the combinations of each new cell with
 *   one or two others (earlier ones: any family, name or release) that are a region row by
 *   row, or zero; the engine counts the patients of that region and the patients for whom
 *   the same sum of the cells' patient sets is not zero (ledger/truth.ts). Where either is 1
 *   to threshold−1, the new cells in it are held back. The truth decides, not arithmetic on
 *   the published figures: rows 821 against 820 with equal patient counts is a region of one
 *   row, and its one patient is counted.
 * - Cells of one family (the same groups and values, issue 10) that the set search cannot
 *   relate (another scope, another version of a release, not among the recent cells, or a
 *   cell recorded before boxes were kept): a cell whose patient count differs from an earlier
 *   one by 1 to threshold−1 is held back.
 * - Groupings of the same rows (issue 19): an earlier result of the same filter, cohort and
 *   releases, grouped by some of this one's groups (a margin, or the total) or by more of them.
 *   A coarse cell minus the fine cells shown inside it is what the fine result withheld there;
 *   where that holds 1 to threshold−1 patients (counted by the engine: `withheldPatients`) and
 *   both were released, the later one is held back.
 * `record` writes what was released.
 */
export async function checkReleaseLedger(
  platform: PlatformParts,
  input: {
    holder: string;
    /** Who asks: their results under any holder, and their holders' cells, count too. */
    userId: string;
    datasetId: string;
    spec: QuerySpec;
    columns: readonly ResultColumn[];
    groups: readonly AggregateRow[];
    total: AggregateRow;
    threshold: number;
    releaseIds: readonly string[];
    withheldPatients: WithheldPatients;
    /** The compile context of the query: its dialect, columns, code sets and cohort files. */
    context: CompileContext;
    /** The releases the main query read, and those its cohort read. */
    mainReleases: readonly ReleaseSlot[];
    cohortReleases: readonly string[];
    /** Whether the total shown covers only the groups of at least threshold patients. */
    totalOverShown: boolean;
    options?: RunOptions;
    bounds?: SearchBounds;
  },
): Promise<{
  verdict: LedgerVerdict;
  statistics: LedgerStatistics;
  record(queryId: string, rows: readonly DisclosedRow[], totalShown: boolean): Promise<void>;
  release(): Promise<void>;
}> {
  const release = await lockReleaseLedger(
    platform.catalog,
    ledgerLockKeys(input.holder, input.userId),
    input.datasetId,
  );
  try {
    return { ...(await check(platform, input)), release };
  } catch (error) {
    await release();
    throw error;
  }
}

async function check(
  platform: PlatformParts,
  input: Parameters<typeof checkReleaseLedger>[1],
): Promise<{
  verdict: LedgerVerdict;
  statistics: LedgerStatistics;
  record(queryId: string, rows: readonly DisclosedRow[], totalShown: boolean): Promise<void>;
}> {
  const started = performance.now();
  const { holder, userId, datasetId, spec, columns, threshold } = input;
  const grouped = spec.groupBy.length > 0;
  const groupKeys = spec.groupBy.map(groupKey);
  const groupCells = input.groups.map((group) =>
    cellOf(datasetId, groupKeys, groupValues(group, columns)),
  );
  const totalCell = cellOf(datasetId, [], null);
  const resultFamily = rowsKeyOf(datasetId, spec, input.releaseIds);
  const ledger = releasedCellsRepository(platform.catalog.db);
  // The earlier cells of these families, and the recent cells, newest first: of the holder,
  // of the user under any holder, and of every holder the user has been with.
  const { earlier, pool, listed } = await ledger.relevant(
    { holder, userId },
    datasetId,
    [totalCell.family, resultFamily, ...(grouped ? groupCells.map((cell) => cell.family) : [])],
    ledgerPoolSize,
    platform.catalog.held,
  );
  // The holder is among the user's holders once a result was released to them under it: the
  // user's later checks read its cells, whoever asked for them.
  const holderListed = listed.includes(holder);

  // The boxes of this result's cells, in one scope.
  const shapeContext = { columns: input.context.columns, codeSets: input.context.codeSets };
  const shape = shapeOf(spec, shapeContext, input.cohortReleases);
  const small = (row: AggregateRow) => row[hiddenPatients] > 0 && row[hiddenPatients] < threshold;
  const labels = input.groups.map((group) => groupValues(group, columns));
  const groupBoxes = input.groups.map((group, index) =>
    grouped && !small(group)
      ? cellBox(shape, spec.groupBy, labels[index]!, input.mainReleases, shapeContext)
      : undefined,
  );
  const totalBox = totalBoxOf(shape, input, groupBoxes, shapeContext);

  const slots = await releaseSlots(
    platform,
    datasetId,
    input.mainReleases,
    releasesOf(pool.map((cell) => cell.stored.box)),
  );
  const inPool = new Set(pool.map((cell) => cell.id));
  // A box fixes the rows a cell covers (its releases included), and so every figure of it: a
  // cell with the box of one released before tells nothing new. Such cells are neither searched
  // nor recorded again, so that asking the same question again neither costs a search nor
  // crowds the pool with copies; of copies already in the pool the newest stands for them all.
  // Only a copy released to this holder counts: one released to the user under another holder
  // (or to another holder of theirs) is recorded again for this one, whose other members and
  // later checks would not see it otherwise, and is searched against this one's cells.
  const seen = new Set<string>();
  const heldHere = new Set<string>();
  const sameScope = pool.filter((cell) => {
    if (cell.stored.scope !== shape.scopeKey) return false;
    if (!cell.stored.box) return true;
    const key = cell.stored.boxKey ?? boxKeyOf(cell.stored.box);
    if (cell.holder === holder) heldHere.add(key);
    if (seen.has(key)) return false;
    seen.add(key);
    return true;
  });
  const releasedBefore = (box: Box | undefined) => box !== undefined && heldHere.has(boxKeyOf(box));

  let first: { queryId: string; releasedAt: Date } | undefined;
  const blame = (clash: { queryId: string; releasedAt: Date } | undefined) => {
    if (clash && (!first || clash.releasedAt < first.releasedAt)) first = clash;
  };

  // Cells of one family that the set search cannot relate: compared by their patient counts.
  const revealing = (cell: Cell, box: Box | undefined, patients: number) => {
    const clash = (earlier.get(cell.family) ?? []).find((old) => {
      const stored = old.cell as StoredCell;
      const related =
        box !== undefined &&
        inPool.has(old.id) &&
        stored.box !== undefined &&
        stored.scope === shape.scopeKey &&
        sameVersions(slots, boxReleases(box), boxReleases(stored.box));
      if (related) return false;
      const difference = Math.abs(patients - old.patients);
      return difference > 0 && difference < threshold;
    });
    blame(clash);
    return clash !== undefined;
  };
  const verdict: LedgerVerdict = {
    total: revealing(totalCell, totalBox, Number(input.total[hiddenPatients])),
    groups: grouped
      ? input.groups.map((group, index) =>
          revealing(groupCells[index]!, groupBoxes[index], Number(group[hiddenPatients])),
        )
      : [],
  };

  // Sets: combinations of the new cells with the holder's recent ones.
  const news: SearchCell[] = [];
  // A histogram bin is a cell of its own (its cell's box narrowed to the bin): a bin it gives
  // away holds back its whole cell.
  const held = (cell: SearchCell) => {
    const parent = cell.id.split('#')[0]!;
    if (parent === 'total') verdict.total = true;
    else verdict.groups[Number(parent.slice(1))] = true;
  };
  const addNew = (id: string, box: Box, row: AggregateRow, withBins: boolean) => {
    if (releasedBefore(box)) return;
    news.push({
      id,
      box,
      rows: Number(row[hiddenRows]),
      patients: Number(row[hiddenPatients]),
      earlier: false,
    });
    if (!withBins) return;
    for (const bin of histogramCells(spec, columns, box, row, threshold)) {
      news.push({ ...bin, id: `${id}#${bin.key}`, earlier: false });
    }
  };
  groupBoxes.forEach((box, index) => {
    if (box && !verdict.groups[index]) addNew(`g${index}`, box, input.groups[index]!, true);
  });
  if (totalBox && !verdict.total && !small(input.total)) {
    addNew('total', totalBox, input.total, !grouped);
  }
  const searchPool: SearchCell[] = sameScope
    .filter((cell) => cell.stored.box !== undefined)
    .map((cell) => ({
      id: `e${cell.id}`,
      box: cell.stored.box!,
      rows: cell.stored.rows ?? 0,
      patients: cell.patients,
      earlier: true,
    }));
  const byId = new Map(sameScope.map((cell) => [`e${cell.id}`, cell]));
  // In a worker thread: a first asking's search takes seconds of CPU on a large lake, which
  // the main thread would take from every other request. This check keeps its lock meanwhile.
  const search = await searchInWorker(news, searchPool, input.bounds ?? defaultSearchBounds);
  for (const cell of search.unexamined) held(cell);

  const { revealed, statements } = await judge(
    platform,
    input,
    shape.scope,
    search.candidates,
    slots,
  );
  for (const candidate of revealed) {
    for (const term of candidate.terms) {
      if (term.cell.earlier) blame(byId.get(term.cell.id));
      else held(term.cell);
    }
  }

  // Earlier results of one grouping ask the engine the same question: it is asked once.
  const counted = new Map<string, ReturnType<WithheldPatients>>();
  const withheldPatients: WithheldPatients = (groupBy, coarse) => {
    const key = canonicalJson({ groups: groupBy.map(groupKey), coarse });
    const found = counted.get(key) ?? input.withheldPatients(groupBy, coarse);
    counted.set(key, found);
    return found;
  };
  for (const old of earlier.get(resultFamily) ?? []) {
    const clashes = await marginalClashes(old.cell as ResultRecord, {
      spec,
      labels: grouped ? labels : [],
      threshold,
      smallGroups: grouped ? input.groups.filter(small).length : 0,
      withheldPatients,
    });
    if (clashes.total) verdict.total = true;
    clashes.groups.forEach((index) => (verdict.groups[index] = true));
    if (clashes.total || clashes.groups.length > 0) blame(old);
  }
  if (first) {
    verdict.reason = `compared with cells released to you before (the earliest on ${first.releasedAt.toISOString().slice(0, 10)}, query ${first.queryId}), they would reveal a group of fewer than ${threshold} patients`;
  } else if (search.unexamined.length > 0) {
    verdict.reason = `the ledger could not compare ${search.unexamined.length === 1 ? 'it' : 'them'} with every cell released to you before within its bound (a result with fewer groups or histogram bins is checked in full)`;
  } else if (verdict.total || verdict.groups.some(Boolean)) {
    verdict.reason = `together with cells released to you before, they would reveal a group of fewer than ${threshold} patients`;
  }

  const statistics: LedgerStatistics = {
    earlierCells: searchPool.length,
    evaluated: search.evaluated,
    candidates: search.candidates.length,
    engineStatements: statements,
    unexamined: search.unexamined.length,
    milliseconds: Math.round(performance.now() - started),
  };

  return {
    verdict,
    statistics,
    async record(queryId, rows, totalShown) {
      // The rows as released are in the result's order; they are matched back by their values.
      // By their labels as the ledger compares them: the same labels are the same family.
      const byLabels = new Map(
        groupCells.map((cell, index) => [labelsKey(cell.cell.values ?? []), index] as const),
      );
      const released: Array<{ family: string; cell: unknown; patients: number }> = [];
      const shownLabels: unknown[][] = [];
      const stored = (box: Box | undefined, row: AggregateRow, cell: Cell): StoredCell => ({
        ...cell.cell,
        ...(box ? { box, boxKey: boxKeyOf(box), scope: shape.scopeKey } : {}),
        rows: Number(row[hiddenRows]),
      });
      // The bins shown of a cell's histograms, each a cell of its own.
      const binsReleased = (
        box: Box | undefined,
        row: AggregateRow,
        shownRow: DisclosedRow,
        cell: Cell,
      ) =>
        box
          ? histogramCells(spec, columns, box, row, threshold, shownRow).map((bin) => ({
              family: sha256({ family: cell.family, bin: bin.key }),
              cell: {
                ...cell.cell,
                bin: bin.key,
                box: bin.box,
                boxKey: boxKeyOf(bin.box),
                scope: shape.scopeKey,
                rows: bin.rows,
              },
              patients: bin.patients,
            }))
          : [];
      for (const row of grouped ? rows : []) {
        if (row.suppressed) continue;
        const values = groupValues(row, columns).map(normalLabel);
        const index = byLabels.get(labelsKey(values));
        const cell = index === undefined ? undefined : groupCells[index];
        if (cell && index !== undefined && !releasedBefore(groupBoxes[index])) {
          const group = input.groups[index]!;
          released.push({
            family: cell.family,
            cell: stored(groupBoxes[index], group, cell),
            patients: Number(group[hiddenPatients]),
          });
          released.push(...binsReleased(groupBoxes[index], group, row, cell));
        }
        shownLabels.push(values);
      }
      if (totalShown && !releasedBefore(totalBox)) {
        released.push({
          family: totalCell.family,
          cell: stored(totalBox, input.total, totalCell),
          patients: Number(input.total[hiddenPatients]),
        });
        if (!grouped && rows[0]) {
          released.push(...binsReleased(totalBox, input.total, rows[0], totalCell));
        }
      }
      const record: ResultRecord = {
        groups: groupKeys,
        released: shownLabels,
        totalReleased: totalShown,
        smallGroups: grouped ? input.groups.filter(small).length : 0,
      };
      // A record the holder was given before, word for word (the same question asked again),
      // tells a later check nothing that one does not: the checks read a record by its holder
      // and compare its groups and labels, so it is not recorded again, and the ledger does not
      // grow with repeats. Only where the holder is already among the user's holders, which the
      // first record of each holder adds.
      const recordKey = canonicalJson(record);
      const given =
        holderListed &&
        (earlier.get(resultFamily) ?? []).some(
          (old) => old.holder === holder && canonicalJson(old.cell) === recordKey,
        );
      if (!given) {
        released.push({
          family: resultFamily,
          cell: record,
          patients: Number(input.total[hiddenPatients]),
        });
      }
      if (released.length === 0) return;
      await ledger.record({ holder, userId }, datasetId, queryId, released, {
        holderListed,
        ...(platform.catalog.held ? { held: platform.catalog.held, otherHolders: listed } : {}),
      });
    },
  };
}

/**
 * The bins of a cell's histograms as cells of their own: the cell's box narrowed to each bin,
 * with the bin's rows and patients. Those shown (`shown`: the row as released), or before
 * release those of at least threshold patients.
 */
function histogramCells(
  spec: QuerySpec,
  columns: readonly ResultColumn[],
  box: Box,
  row: AggregateRow,
  threshold: number,
  shown?: DisclosedRow,
): Array<{ key: string; box: Box; rows: number; patients: number }> {
  const cells = [];
  for (const column of columns) {
    if (column.type !== 'histogram') continue;
    const measure = spec.measures.find(
      (item) => item.fn === 'histogram' && measureOutputName(item) === column.name,
    );
    if (!measure || measure.fn !== 'histogram') continue;
    const counts = binEntries(row[column.name]);
    const patients = binEntries(column.binPatients ? row[column.binPatients] : undefined);
    const visible = shown
      ? new Set(
          ((shown[column.name] as HistogramBin[] | null) ?? [])
            .filter((bin) => !bin.suppressed)
            .map((bin) => bin.bin),
        )
      : undefined;
    for (const [bin, count] of counts) {
      const binPatients = patients.get(bin) ?? count;
      if (visible ? !visible.has(bin) : binPatients < threshold) continue;
      const range = between(bin, bin + measure.binWidth, { to: true });
      const current = box[measure.column];
      const narrowed = current ? intersect(current, range) : range;
      if (isEmpty(narrowed)) continue;
      cells.push({
        key: `${column.name}:${bin}`,
        box: { ...box, [measure.column]: narrowed },
        rows: count,
        patients: binPatients,
      });
    }
  }
  return cells;
}

function binEntries(value: unknown): Map<number, number> {
  if (!Array.isArray(value)) return new Map();
  return new Map(
    (value as Array<{ key: unknown; value: unknown }>).map((entry) => [
      Number(entry.key),
      Number(entry.value),
    ]),
  );
}

/** A released cell as the ledger keeps it: its family's key, its box and scope, its rows. */
type StoredCell = Cell['cell'] & { box?: Box; boxKey?: string; scope?: string; rows?: number };

/**
 * A box's identity, kept with the cell when it is recorded: comparing the pool's boxes by it
 * costs nothing per check, where putting each in canonical form cost tens of milliseconds.
 */
function boxKeyOf(box: Box): string {
  let key = boxKeys.get(box);
  if (key === undefined) {
    key = sha256(box);
    boxKeys.set(box, key);
  }
  return key;
}

/**
 * Keys of the boxes met, by the box: a check asks for a new cell's key several times (whether
 * it was released before, its record), and canonical JSON of a box is not cheap. Boxes are not
 * changed once made (a narrower one is a new object).
 */
const boxKeys = new WeakMap<Box, string>();

/**
 * The total's box: the query's, or, when the total covers only the groups shown (some were
 * under the threshold), the union of their labels on a single grouping column. A total over
 * the shown groups of several columns is no box: the set search leaves it out.
 */
function totalBoxOf(
  shape: ReturnType<typeof shapeOf>,
  input: Parameters<typeof checkReleaseLedger>[1],
  groupBoxes: ReadonlyArray<Box | undefined>,
  context: Parameters<typeof cellBox>[4],
): Box | undefined {
  const whole = cellBox(shape, [], null, input.mainReleases, context);
  if (!whole || !input.totalOverShown) return whole;
  const [group, ...more] = input.spec.groupBy;
  if (!group || more.length > 0) return undefined;
  const shown = groupBoxes.filter((box): box is Box => box !== undefined);
  if (shown.length === 0) return undefined;
  const constraints = shown.map((box) => box[group.column]);
  if (constraints.some((constraint) => constraint === undefined)) return undefined;
  const releases = shown.map((box) => box.release!);
  if (group.column === 'hospital' || group.column === 'month') {
    return { ...whole, release: unionOf(releases) };
  }
  return { ...whole, [group.column]: unionOf(constraints as NonNullable<Box[string]>[]) };
}

const unionOf = (constraints: ReadonlyArray<NonNullable<Box[string]>>) => union(...constraints);

/** The ids of the releases a box reads. */
function boxReleases(box: Box | undefined): readonly string[] {
  const release = box?.release;
  if (!release) return [];
  let ids = releasesRead.get(release);
  if (!ids) {
    ids = release.ranges.flatMap(([lo]) => ('v' in lo ? [String(lo.v)] : []));
    releasesRead.set(release, ids);
  }
  return ids;
}

/** The ids of the releases a box's constraint on them names, by the constraint (never changed). */
const releasesRead = new WeakMap<NonNullable<Box['release']>, readonly string[]>();

/**
 * The ids of the releases the boxes read, each list of releases once: the pool's cells most
 * often read the very same releases, a few hundred ids each, and were listed cell by cell.
 */
function releasesOf(boxes: ReadonlyArray<Box | undefined>): string[] {
  const seen = new Set<string>();
  const ids: string[] = [];
  for (const box of boxes) {
    if (!box?.release) continue;
    const key = constraintKey(box.release);
    if (seen.has(key)) continue;
    seen.add(key);
    ids.push(...boxReleases(box));
  }
  return ids;
}

/** Whether two sets of releases read no hospital's month in two different versions. */
function sameVersions(
  slots: ReadonlyMap<string, ReleaseSlot>,
  a: readonly string[],
  b: readonly string[],
): boolean {
  const versions = new Map<string, string>();
  for (const id of a) {
    const slot = slots.get(id);
    if (!slot) return false;
    versions.set(`${slot.hospitalId}/${slot.month}`, id);
  }
  for (const id of b) {
    const slot = slots.get(id);
    if (!slot) return false;
    const other = versions.get(`${slot.hospitalId}/${slot.month}`);
    if (other !== undefined && other !== id) return false;
  }
  return true;
}

/**
 * Slots of releases read from the catalog, per catalog. A release's hospital, month and rows
 * per patient are fixed when it is published, so they are read once: the ledger's pool names
 * the same few hundred releases check after check.
 */
const slotsRead = new WeakMap<object, LRUCache<string, ReleaseSlot>>();

/** The releases' slots: those the query read are known, the others are read from the catalog. */
async function releaseSlots(
  platform: PlatformParts,
  datasetId: string,
  known: readonly ReleaseSlot[],
  ids: readonly string[],
): Promise<Map<string, ReleaseSlot>> {
  const slots = new Map<string, ReleaseSlot>(known.map((slot) => [slot.id, slot]));
  const cache = slotsRead.get(platform.catalog.db) ?? new LRUCache({ max: 100_000 });
  slotsRead.set(platform.catalog.db, cache);
  const unique: string[] = [];
  for (const id of new Set(ids)) {
    if (slots.has(id)) continue;
    const slot = cache.get(id);
    if (slot) slots.set(id, slot);
    else unique.push(id);
  }
  const repository = releasesRepository(platform.catalog.db);
  for (let from = 0; from < unique.length; from += 1000) {
    for (const release of await repository.locations(datasetId, unique.slice(from, from + 1000))) {
      const slot: ReleaseSlot = {
        id: release.id,
        hospitalId: release.hospitalId,
        month: release.month,
        ...(release.maxRowsPerPatient === null
          ? {}
          : { maxRowsPerPatient: release.maxRowsPerPatient }),
        fileCount: release.fileCount,
      };
      cache.set(slot.id, slot);
      slots.set(slot.id, slot);
    }
  }
  return slots;
}

/**
 * Which candidates reveal 1 to threshold−1 patients. The counts decide where they can: a
 * region's rows are the signed sum of its cells' rows (1 to threshold−1 rows are that few
 * patients at most; rows ÷ the most rows one patient has in its releases are at least that many
 * patients), and for one cell within another the patients of the difference are at least the
 * difference of their patient counts. The engine counts the rest.
 */
async function judge(
  platform: PlatformParts,
  input: Parameters<typeof checkReleaseLedger>[1],
  scope: ReturnType<typeof shapeOf>['scope'],
  candidates: readonly Candidate[],
  slots: ReadonlyMap<string, ReleaseSlot>,
): Promise<{ revealed: Candidate[]; statements: number }> {
  const { threshold } = input;
  const few = (n: number) => n > 0 && n < threshold;
  const revealed: Candidate[] = [];
  const ask: Candidate[] = [];
  for (const candidate of candidates) {
    const { terms, combination } = candidate;
    const sign = combination.kind === 'region' ? combination.sign : 1;
    const rows = sign * terms.reduce((sum, t) => sum + t.coefficient * t.cell.rows, 0);
    const patients = sign * terms.reduce((sum, t) => sum + t.coefficient * t.cell.patients, 0);
    if (terms.length === 2) {
      // One cell within the other: its patients are within the other's, so the difference of
      // the patient counts is exactly the patients of the larger with no row in the smaller.
      if (few(patients)) {
        revealed.push(candidate);
        continue;
      }
      if (combination.kind === 'zero' || rows <= 0 || patients >= threshold) continue;
    }
    if (combination.kind === 'region') {
      if (rows <= 0) continue;
      if (few(rows)) {
        revealed.push(candidate);
        continue;
      }
      // A cell added, less every cell taken away, lies within the region: it holds at least
      // that cell's patients less theirs.
      const taken = terms
        .filter((t) => t.coefficient !== sign)
        .reduce((sum, t) => sum + t.cell.patients, 0);
      const floor = Math.max(
        ...terms.filter((t) => t.coefficient === sign).map((t) => t.cell.patients - taken),
      );
      if (floor >= threshold && terms.length > 2) continue;
      // Each patient of the region has at most `most` of its rows; the patients it sums over
      // (its patient support) include the region's own.
      const most = mostRowsPerPatient(terms, slots);
      if (most !== undefined && Math.ceil(rows / most) >= threshold) continue;
    }
    ask.push(candidate);
  }
  if (ask.length === 0) return { revealed, statements: 0 };

  const cells = new Map<string, Box>();
  for (const candidate of ask) {
    for (const term of candidate.terms) cells.set(term.cell.id, term.cell.box);
  }
  const releaseIds = new Set([...cells.values()].flatMap(boxReleases));
  const files = [...releaseIds].flatMap((id) => {
    const slot = slots.get(id);
    if (!slot) return [];
    const folder = releaseFolder({
      datasetId: input.datasetId,
      hospitalId: slot.hospitalId,
      month: slot.month,
      releaseId: id,
    });
    return releaseFileLocations(platform.store, { folder, fileCount: slot.fileCount });
  });
  if (files.length === 0) return { revealed, statements: 0 };
  const questions: TruthQuestion[] = ask.map((candidate) => ({
    terms: candidate.terms.map((term) => ({
      cell: term.cell.id,
      coefficient: term.coefficient,
    })),
    region: candidate.combination.kind === 'region' ? candidate.combination.boxes : null,
  }));
  const answers = await askTheEngine({
    engine: platform.engine,
    options: input.options ?? {},
    context: input.context,
    scope,
    files,
    cells,
    questions,
  });
  answers.forEach((answer, index) => {
    if (few(answer.regionPatients) || few(answer.patientSupport)) revealed.push(ask[index]!);
  });
  return { revealed, statements: Math.ceil(ask.length / 40) };
}

/** The catalog's bound on one patient's rows in the releases the terms' cells read. */
function mostRowsPerPatient(
  terms: Candidate['terms'],
  slots: ReadonlyMap<string, ReleaseSlot>,
): number | undefined {
  const read = terms.map((term) => boxReleases(term.cell.box));
  // A cell whose releases are not listed bounds nothing.
  if (read.some((ids) => ids.length === 0)) return undefined;
  return mostRowsAcross([...new Set(read.flat())].map((id) => slots.get(id)));
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
    /** How many of this result's groups hold 1 to threshold−1 patients. */
    smallGroups: number;
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
    // cell whose withheld part is small, if that cell was released. Nothing is withheld when
    // no group of this one is small: the engine need not count it.
    if (input.smallGroups === 0) return none;
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
    // part in the earlier grouping is small, if the earlier one showed cells inside them (none
    // when it had no small group, which records kept since 2026-12-06 say).
    if (old.smallGroups === 0) return none;
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
