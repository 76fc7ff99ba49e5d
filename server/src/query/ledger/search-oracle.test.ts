import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  boxesShare,
  boxHolds,
  combineAtPoints,
  lyingWholly,
  pointsToTry,
  type Term,
} from '../../../test/ledger-oracle.ts';
import { between, combine, onlyNull, otherValues, points, union, type Box } from './regions.ts';
import { searchInWorker } from './search-threads.ts';
import { searchCombinations, type SearchBounds, type SearchCell } from './search.ts';

// Releases read drawn from a few dozen ids, as a holder's cells read most or part of them; the
// other dimensions from a handful of values, so that cells meet, nest and straddle often.
const releaseIds = Array.from({ length: 40 }, (_, index) => `r${String(index).padStart(2, '0')}`);
const releases = fc.oneof(
  fc.constant(points(releaseIds)),
  fc.subarray(releaseIds, { minLength: 1 }).map((ids) => points(ids)),
);
const codes = fc.subarray(['a', 'b', 'c', 'd'], { minLength: 1 }).map((ids) => points(ids));
const values = fc
  .tuple(fc.integer({ min: 0, max: 5 }), fc.integer({ min: 0, max: 5 }), fc.boolean())
  .map(([a, b, nulls]) => {
    const range = between(Math.min(a, b), Math.max(a, b), { to: nulls });
    return nulls ? union(range, onlyNull) : range;
  });
const zips = fc.constantFrom('905', '908').map((zip) => otherValues(points([zip])));
const box = fc
  .record(
    { release: releases, code: codes, value: values, zip: zips },
    { requiredKeys: ['release'] },
  )
  .map((drawn) => drawn as Box);
const cells = (prefix: string, earlier: boolean, max: number) =>
  fc.array(box, { minLength: earlier ? 0 : 1, maxLength: max }).map((boxes) =>
    boxes.map((cellBox, index): SearchCell => ({
      id: `${prefix}${index}`,
      box: cellBox,
      rows: 10,
      patients: 10,
      earlier,
    })),
  );

type Signed = { cell: SearchCell; coefficient: 1 | -1 };

/** A combination named by its cells and signs, the same whichever sign it is read with. */
function keyOf(terms: readonly Signed[]): string {
  const sorted = terms.toSorted((a, b) => a.cell.id.localeCompare(b.cell.id));
  const sign = sorted[0]!.coefficient;
  return sorted.map((term) => `${term.coefficient * sign}${term.cell.id}`).join(' ');
}

const asTerms = (terms: readonly Signed[]): Term[] =>
  terms.map((term) => ({ coefficient: term.coefficient, box: term.cell.box }));

/**
 * Every combination the search promises to flag, found by trying them all at every point: a new
 * cell less an earlier one, where the difference is a region; and a new cell with two others (at
 * least one earlier) under any signs, where the sum is zero, or a region in which no cell lies
 * wholly (such a region holds at least a released cell's patients, so gives nothing away).
 */
function combinationsToFlag(news: readonly SearchCell[], earlier: readonly SearchCell[]) {
  const all = [...news, ...earlier];
  const share = new Map(
    all.map((a) => [a, new Set(all.filter((b) => b !== a && boxesShare(a.box, b.box)))]),
  );
  const flag = new Set<string>();
  for (const x of news) {
    for (const a of earlier) {
      const terms: Signed[] = [
        { cell: x, coefficient: 1 },
        { cell: a, coefficient: -1 },
      ];
      if (combineAtPoints(asTerms(terms)).kind === 'region') flag.add(keyOf(terms));
    }
    const others = all.filter((cell) => cell !== x);
    for (const [i, a] of others.entries()) {
      for (const b of others.slice(i + 1)) {
        if (!a.earlier && !b.earlier) continue;
        // A cell that shares no row with the others stands whole in the sum: the sum is then
        // mixed, or a region holding that cell.
        const trio = [x, a, b];
        if (
          trio.some((one) => trio.every((other) => other === one || !share.get(one)!.has(other)))
        ) {
          continue;
        }
        for (const [signA, signB] of [
          [1, 1],
          [1, -1],
          [-1, 1],
          [-1, -1],
        ] as const) {
          const terms: Signed[] = [
            { cell: x, coefficient: 1 },
            { cell: a, coefficient: signA },
            { cell: b, coefficient: signB },
          ];
          const found = combineAtPoints(asTerms(terms));
          if (found.kind === 'mixed') continue;
          if (
            found.kind === 'region' &&
            all.some((cell) => lyingWholly(cell.box, asTerms(terms), found.sign))
          ) {
            continue;
          }
          flag.add(keyOf(terms));
        }
      }
    }
  }
  return flag;
}

const unbounded: SearchBounds = { neighbours: 1_000, combinations: 1_000_000 };

/** The search in the main thread, and in a worker thread as the ledger runs it. */
const searches: Array<
  [
    string,
    (
      news: SearchCell[],
      earlier: SearchCell[],
      bounds: SearchBounds,
    ) => Promise<ReturnType<typeof searchCombinations>>,
  ]
> = [
  [
    'in the main thread',
    async (news, earlier, bounds) => searchCombinations(news, earlier, bounds),
  ],
  ['in a worker thread', searchInWorker],
];

describe.each(searches)(
  'the ledger search %s against every combination tried at every point',
  (_, search) => {
    it('flags every combination that gives a region or zero away, within unlimited bounds', async () => {
      let flagged = 0;
      let threes = 0;
      await fc.assert(
        fc.asyncProperty(cells('n', false, 4), cells('e', true, 7), async (news, earlier) => {
          const found = await search(news, earlier, unbounded);
          const keys = new Set(found.candidates.map((candidate) => keyOf(candidate.terms)));
          const missed = [...combinationsToFlag(news, earlier)].filter((key) => !keys.has(key));
          expect(missed).toEqual([]);
          expect(found.unexamined).toEqual([]);
          flagged += keys.size;
          threes += found.candidates.filter((candidate) => candidate.terms.length === 3).length;
        }),
        { numRuns: 150 },
      );
      // The cells drawn do give the search something to flag, of two cells and of three.
      expect(flagged).toBeGreaterThan(0);
      expect(threes).toBeGreaterThan(0);
    }, 300_000);

    it('flags only sums that are a region or zero, with the region and sign they have', async () => {
      await fc.assert(
        fc.asyncProperty(
          cells('n', false, 5),
          cells('e', true, 12),
          fc.constantFrom<SearchBounds>(unbounded, { neighbours: 3, combinations: 15 }),
          async (news, earlier, bounds) => {
            const found = await search(news, earlier, bounds);
            for (const candidate of found.candidates) {
              const expected = combineAtPoints(asTerms(candidate.terms));
              expect(expected.kind).toBe(candidate.combination.kind);
              if (expected.kind !== 'region' || candidate.combination.kind !== 'region') continue;
              expect(candidate.combination.sign).toBe(expected.sign);
            }
            // A cell is held back only once the search has spent its combinations.
            if (found.unexamined.length > 0) {
              expect(found.evaluated).toBeGreaterThanOrEqual(bounds.combinations);
            }
          },
        ),
        { numRuns: 300 },
      );
    });
  },
);

describe('the ledger’s geometry against every point', () => {
  it('combines two or three cells into the same region, sign or zero as the point by point sum', () => {
    fc.assert(
      fc.property(
        fc.array(fc.tuple(box, fc.constantFrom(1, -1)), { minLength: 2, maxLength: 3 }),
        (drawn) => {
          const terms = drawn.map(([cellBox, coefficient]) => ({ box: cellBox, coefficient }));
          const found = combine(terms);
          const expected = combineAtPoints(terms);
          expect(found.kind).toBe(expected.kind);
          if (found.kind !== 'region' || expected.kind !== 'region') return;
          expect(found.sign).toBe(expected.sign);
          // The region's boxes hold exactly the rows where the sum is its sign.
          for (const point of pointsToTry([...terms.map((term) => term.box), ...found.boxes])) {
            expect(found.boxes.some((regionBox) => boxHolds(regionBox, point))).toBe(
              expected.inRegion(point),
            );
          }
        },
      ),
      { numRuns: 2000 },
    );
  });
});
