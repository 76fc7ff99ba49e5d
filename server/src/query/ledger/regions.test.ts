import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  between,
  combine,
  onlyNull,
  points,
  shareConstraints,
  union,
  within,
  point,
  type Box,
  type Constraint,
  type Value,
} from './regions.ts';

// The values constraints are drawn from, and a world of rows holding those and values between
// and beyond them (a constraint covers its whole domain, not only the values drawn): the
// oracle counts row by row.
const drawn = { release: ['r1', 'r2', 'r3'], code: ['a', 'b', 'c'] } as const;
const world = {
  release: ['r0', 'r1', 'r15', 'r2', 'r3', 'r4'],
  code: ['0', 'a', 'ab', 'b', 'c', 'd'],
  value: [null, ...Array.from({ length: 17 }, (_, index) => index / 2 - 1)],
};
type Row = { release: Value; code: Value; value: Value | null };
const rows: Row[] = world.release.flatMap((release) =>
  world.code.flatMap((code) => world.value.map((value) => ({ release, code, value }))),
);

const holds = (constraint: Constraint, value: Value | null) =>
  value === null ? constraint.nulls : within(point(value), constraint);
const inBox = (box: Box, row: Row) =>
  Object.entries(box).every(([dim, constraint]) => holds(constraint, row[dim as keyof Row]));

const someOf = (values: readonly string[]) =>
  fc.subarray([...values], { minLength: 1 }).map((picked) => points(picked));
const valueConstraint = fc.oneof(
  fc.constant(onlyNull),
  fc
    .tuple(fc.integer({ min: 0, max: 6 }), fc.integer({ min: 0, max: 6 }), fc.boolean())
    .map(([a, b, nulls]) => {
      const range = between(Math.min(a, b), Math.max(a, b), { to: true });
      return nulls ? union(range, onlyNull) : range;
    }),
);
// Releases are most often the same set in every cell, as in the ledger: the case the geometry
// takes a shortcut for.
const box = (releases: Constraint) =>
  fc
    .record(
      {
        release: fc.oneof(fc.constant(releases), someOf(drawn.release)),
        code: someOf(drawn.code),
        value: valueConstraint,
      },
      { requiredKeys: ['release'] },
    )
    .map((drawn) => drawn as Box);

describe('the ledger’s geometry against a count row by row', () => {
  it('a combination is a region exactly where its cells sum to its sign, zero elsewhere', () => {
    fc.assert(
      fc.property(
        someOf(drawn.release).chain((releases) =>
          fc.array(fc.tuple(box(releases), fc.constantFrom(1, -1)), {
            minLength: 2,
            maxLength: 3,
          }),
        ),
        fc.boolean(),
        (drawn, shared) => {
          const boxes = drawn.map(([cell]) => cell);
          const terms = (shared ? shareConstraints(boxes) : boxes).map((cell, index) => ({
            box: cell,
            coefficient: drawn[index]![1],
          }));
          const sums = rows.map((row) =>
            terms.reduce((sum, term) => sum + (inBox(term.box, row) ? term.coefficient : 0), 0),
          );
          const found = combine(terms);
          if (found.kind === 'mixed') {
            // Neither all within {0, 1} nor all within {0, −1}.
            expect(sums.every((s) => s === 0 || s === 1)).toBe(false);
            expect(sums.every((s) => s === 0 || s === -1)).toBe(false);
          } else if (found.kind === 'zero') {
            expect(sums.every((s) => s === 0)).toBe(true);
          } else {
            rows.forEach((row, index) => {
              const inRegion = found.boxes.some((leaf) => inBox(leaf, row));
              expect(sums[index]).toBe(inRegion ? found.sign : 0);
            });
          }
        },
      ),
      { numRuns: 2000 },
    );
  });
});

describe('constraints shared by the keys kept check after check', () => {
  it('gives back the boxes given, equal constraints as one object and only those', () => {
    fc.assert(
      fc.property(
        someOf(drawn.release).chain((releases) => fc.array(box(releases), { maxLength: 6 })),
        (boxes) => {
          // The pool's boxes are the same objects from one check to the next: their keys are
          // kept. A copy of each, as a box read again from the catalog, is a new object.
          const copies = boxes.map((cell) => structuredClone(cell));
          shareConstraints(boxes);
          const shared = shareConstraints([...boxes, ...copies]);
          shared.forEach((cell, index) => {
            expect(cell).toEqual(
              index < boxes.length ? boxes[index] : copies[index - boxes.length],
            );
          });
          for (const a of shared) {
            for (const b of shared) {
              for (const dim of Object.keys(a)) {
                if (!b[dim]) continue;
                const equal = JSON.stringify(a[dim]) === JSON.stringify(b[dim]);
                expect(a[dim] === b[dim]).toBe(equal);
              }
            }
          }
        },
      ),
      { numRuns: 500 },
    );
  });
});
