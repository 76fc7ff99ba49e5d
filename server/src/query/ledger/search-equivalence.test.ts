import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { combine as combineBefore } from '../../../test/ledger-before/regions.ts';
import { searchCombinations as searchBefore } from '../../../test/ledger-before/search.ts';
import { between, combine, onlyNull, otherValues, points, union, type Box } from './regions.ts';
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

/** What a search flagged, by cell ids and signs, and what it held back unexamined. */
const flagged = (result: ReturnType<typeof searchCombinations>) => ({
  evaluated: result.evaluated,
  unexamined: result.unexamined.map((cell) => cell.id),
  candidates: result.candidates.map((candidate) => ({
    terms: candidate.terms.map((term) => `${term.coefficient}${term.cell.id}`),
    combination: candidate.combination,
  })),
});

describe('the faster ledger search against the search before it', () => {
  it('flags exactly the same combinations, evaluates as many, holds back the same cells', () => {
    let candidates = 0;
    let threes = 0;
    fc.assert(
      fc.property(
        cells('n', false, 5),
        cells('e', true, 12),
        fc.constantFrom<SearchBounds>(
          { neighbours: 24, combinations: 20_000 },
          { neighbours: 3, combinations: 15 },
        ),
        (news, earlier, bounds) => {
          const found = searchCombinations(news, earlier, bounds);
          expect(flagged(found)).toEqual(flagged(searchBefore(news, earlier, bounds)));
          candidates += found.candidates.length;
          threes += found.candidates.filter((candidate) => candidate.terms.length === 3).length;
        },
      ),
      { numRuns: 400 },
    );
    // The cells drawn do give the search something to flag, of two cells and of three.
    expect(candidates).toBeGreaterThan(0);
    expect(threes).toBeGreaterThan(0);
  });

  it('finds the same region, sign or zero for any two or three cells', () => {
    fc.assert(
      fc.property(
        fc.array(fc.tuple(box, fc.constantFrom(1, -1)), { minLength: 2, maxLength: 3 }),
        (drawn) => {
          const terms = drawn.map(([cellBox, coefficient]) => ({ box: cellBox, coefficient }));
          expect(combine(terms)).toEqual(combineBefore(terms));
        },
      ),
      { numRuns: 2000 },
    );
  });
});
