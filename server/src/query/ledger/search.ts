import {
  boxesMeet,
  boxWithin,
  combine,
  mayCover,
  meetWithin,
  shareConstraints,
  type Box,
  type Combination,
} from './regions.ts';

/** A cell the search combines: a released one, or one of the result being checked. */
export type SearchCell = {
  id: string;
  box: Box;
  rows: number;
  patients: number;
  /** Released before (in the ledger), rather than a cell of this result. */
  earlier: boolean;
};

export type Candidate = {
  terms: Array<{ cell: SearchCell; coefficient: 1 | -1 }>;
  combination: Extract<Combination, { kind: 'region' | 'zero' }>;
};

/**
 * The bounds of the search, documented in docs/privacy.md: how many earlier cells that overlap
 * a new one are combined with it (the most recent first), and how many combinations one check
 * may evaluate before the cells it has not reached are held back unexamined.
 */
export type SearchBounds = { neighbours: number; combinations: number };

export const defaultSearchBounds: SearchBounds = { neighbours: 24, combinations: 20_000 };

/**
 * The combinations of a new cell X with one or two other cells (earlier ones, or other cells of
 * the same result, at least one earlier) whose signed sum is a region or zero row by row:
 * - X − A and A − X: one within the other;
 * - X − A − B: A and B apart, within X; A + B − X: X split between A and B;
 * - X + A − B: B straddles X and A (A need not meet X: at h02, at h01, all but one ZIP area);
 * - B − X − A: X and A apart within B (A need not meet X: all, h01, h02, and h03 is left).
 * A sum that keeps a whole released cell in its region is left out: that region holds at least
 * threshold patients. Cheap tests on the boxes (which lies within which, which meet) come
 * first; only combinations that pass them are evaluated over the boxes. Earlier cells are
 * taken most recent first, at most `neighbours` of them meeting any one cell.
 */
export function searchCombinations(
  newCells: readonly SearchCell[],
  earlierCells: readonly SearchCell[],
  bounds: SearchBounds = defaultSearchBounds,
): { candidates: Candidate[]; evaluated: number; unexamined: SearchCell[] } {
  // Every combination holds a new cell: with none (a result asked again, each of its cells
  // released before), there is nothing to look for, and nothing to prepare for it.
  if (newCells.length === 0) return { candidates: [], evaluated: 0, unexamined: [] };
  // Equal constraints as one object: the geometry then compares them by reference.
  const boxes = shareConstraints([...newCells, ...earlierCells].map((cell) => cell.box));
  const news = newCells.map((cell, index) => ({ ...cell, box: boxes[index]! }));
  const earlier = earlierCells.map((cell, index) => ({
    ...cell,
    box: boxes[newCells.length + index]!,
  }));
  const candidates = new Map<string, Candidate>();
  let evaluated = 0;
  const unexamined: SearchCell[] = [];
  const consider = (terms: Candidate['terms'], witnesses: readonly SearchCell[] = []) => {
    const sign = terms[0]!.coefficient;
    const key = terms
      .map((t) => `${t.coefficient * sign}${t.cell.id}`)
      .sort()
      .join(' ');
    if (candidates.has(key) || tried.has(key)) return;
    tried.add(key);
    evaluated += 1;
    const combination = combine(
      terms.map((t) => ({ coefficient: t.coefficient, box: t.cell.box })),
    );
    if (combination.kind === 'mixed') return;
    if (combination.kind === 'region' && terms.length > 2) {
      // A cell that meets none of those subtracted from it lies wholly in the region, which
      // then holds at least its patients: at least the threshold, as it was released.
      const added = terms.filter((t) => t.coefficient === combination.sign);
      const taken = terms.filter((t) => t.coefficient !== combination.sign);
      if (added.some((t) => taken.every((u) => !boxesMeet(t.cell.box, u.cell.box)))) return;
      // Nor when another cell lies wholly in it.
      const inRegion = (cell: SearchCell) =>
        !terms.some((t) => t.cell === cell) &&
        combination.boxes.some((box) => boxWithin(cell.box, box));
      if (witnesses.some(inRegion)) return;
    }
    candidates.set(key, { terms, combination });
  };
  const tried = new Set<string>();
  // The earlier cells meeting a cell, most recent first, within the bound; kept per cell.
  const nearCache = new Map<SearchCell, SearchCell[]>();
  const near = (cell: SearchCell) => {
    let found = nearCache.get(cell);
    if (!found) {
      found = [];
      for (const other of earlier) {
        if (found.length >= bounds.neighbours) break;
        if (other !== cell && boxesMeet(other.box, cell.box)) found.push(other);
      }
      nearCache.set(cell, found);
    }
    return found;
  };
  // The new cells meeting a cell, kept per cell: partners beside the earlier ones.
  const newsCache = new Map<SearchCell, SearchCell[]>();
  const newsMeeting = (cell: SearchCell) => {
    let found = newsCache.get(cell);
    if (!found) {
      found = news.filter((other) => other !== cell && boxesMeet(other.box, cell.box));
      newsCache.set(cell, found);
    }
    return found;
  };
  const plus = (cell: SearchCell) => ({ cell, coefficient: 1 as const });
  const minus = (cell: SearchCell) => ({ cell, coefficient: -1 as const });

  for (const x of news) {
    if (evaluated >= bounds.combinations) {
      unexamined.push(x);
      continue;
    }
    const around = near(x).concat(newsMeeting(x));
    const inX = new Map(around.map((cell) => [cell, boxWithin(cell.box, x.box)]));
    const xIn = new Map(around.map((cell) => [cell, boxWithin(x.box, cell.box)]));
    for (const a of around) {
      // Two cells: a region only when one lies within the other (the same box is no news).
      if (a.earlier && inX.get(a) !== xIn.get(a)) consider([plus(x), minus(a)]);
    }
    for (const [i, a] of around.entries()) {
      if (evaluated >= bounds.combinations) break;
      for (const b of around.slice(i + 1)) {
        if (!a.earlier && !b.earlier) continue;
        const abMeet = boxesMeet(a.box, b.box);
        if (inX.get(a) && inX.get(b) && !abMeet) consider([plus(x), minus(a), minus(b)], around);
        if (
          !xIn.get(a) &&
          !xIn.get(b) &&
          meetWithin(a.box, b.box, x.box) &&
          mayCover(x.box, a.box, b.box)
        ) {
          consider([minus(x), plus(a), plus(b)], around);
        }
        if (abMeet) {
          for (const [one, other] of [
            [a, b],
            [b, a],
          ] as const) {
            // X + one − other: other straddles X and one.
            if (!inX.get(other) && !boxWithin(other.box, one.box)) {
              if (meetWithin(x.box, one.box, other.box) && mayCover(other.box, x.box, one.box)) {
                consider([plus(x), plus(one), minus(other)], around);
              }
            }
            // other − X − one: X and one apart within other.
            if (xIn.get(other) && boxWithin(one.box, other.box) && !boxesMeet(x.box, one.box)) {
              consider([plus(other), minus(x), minus(one)], around);
            }
          }
        }
      }
    }
    // Partners that do not meet X, through an earlier cell that does: earlier cells, and other
    // new cells (the total less two groups of a new result is such a sum).
    for (const b of around) {
      if (!b.earlier || evaluated >= bounds.combinations) continue;
      const straddles = !inX.get(b);
      const holds = xIn.get(b) === true;
      if (!straddles && !holds) continue;
      const partners = near(b).concat(newsMeeting(b));
      const witnesses = around.concat(partners);
      for (const a of partners) {
        if (evaluated >= bounds.combinations) break;
        if (a === x || boxesMeet(a.box, x.box)) continue;
        // X + A − B: B within X ⊔ A, reaching into both.
        if (straddles && !boxWithin(b.box, a.box) && mayCover(b.box, x.box, a.box)) {
          consider([plus(x), plus(a), minus(b)], witnesses);
        }
        // B − X − A: X and A apart within B.
        if (holds && boxWithin(a.box, b.box)) consider([plus(b), minus(x), minus(a)], witnesses);
      }
    }
  }
  return { candidates: [...candidates.values()], evaluated, unexamined };
}
