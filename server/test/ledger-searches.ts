/**
 * Set searches of the release ledger shaped like the first askings measured on bench:query's
 * 50 M-row lake (4 hospitals × 12 months, so 48 releases; 21 codes), for the tests of the
 * search threads and `npm run bench:ledger-search`; and the search's answer as plain data, to
 * compare two answers in full.
 */
import { createHash } from 'node:crypto';
import { between, point, points, type Box } from '../src/query/ledger/regions.ts';
import type { searchCombinations, SearchCell } from '../src/query/ledger/search.ts';

export type LakeSearch = { name: string; news: SearchCell[]; earlier: SearchCell[] };

const hospitals = ['h01', 'h02', 'h03', 'h04'];
const months = Array.from(
  { length: 12 },
  (_, index) => `2024-${String(index + 1).padStart(2, '0')}`,
);
/** Release ids as the catalog makes them (UUIDs), one per hospital and month. */
const releaseIds = hospitals.flatMap((hospital) =>
  months.map((month) => {
    const hex = createHash('sha256').update(`${hospital}/${month}`).digest('hex');
    return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-4${hex.slice(13, 16)}-8${hex.slice(17, 20)}-${hex.slice(20, 32)}`;
  }),
);
const codes = Array.from({ length: 21 }, (_, index) => `${1000 + index * 37}-${index % 10}`);
const ageBands: Array<[number, number | undefined]> = [
  [18, 45],
  [45, 65],
  [65, undefined],
];

/**
 * The two first askings traced on 2026-12-07 (docs/benchmarks.md), each after the bench's
 * earlier queries had filled the ledger, newest cells first:
 * - the mean by code, sex and age band (126 new cells) against the patients per code and the
 *   total over every release (22 earlier cells);
 * - one hospital, one month, per code (21 codes and the total, over one release) against those
 *   22 and the 126 cells of the mean by code, sex and age band.
 */
export function lakeSearches(): LakeSearch[] {
  const all = points(releaseIds);
  const one = point(releaseIds[0]!);
  let next = 700;
  const earlierCell = (box: Box, rows: number, patients: number): SearchCell => ({
    id: `e${(next += 1)}`,
    box,
    rows,
    patients,
    earlier: true,
  });
  const newCell = (id: string, box: Box, rows: number, patients: number): SearchCell => ({
    id,
    box,
    rows,
    patients,
    earlier: false,
  });
  const perCode = (release: Box['release'], rows: number, patients: number, made: typeof newCell) =>
    codes.map((code, index) =>
      made(`g${index}`, { code: point(code), release: release! }, rows, patients),
    );
  const byCodeSexAge = (made: typeof newCell) =>
    codes.flatMap((code, c) =>
      ['F', 'M'].flatMap((sex, s) =>
        ageBands.map(([from, to], a) =>
          made(
            `g${c * 6 + s * 3 + a}`,
            {
              code: point(code),
              sex: point(sex),
              age: between(from, to, { to: true }),
              release: all,
            },
            400_000,
            58_000,
          ),
        ),
      ),
    );
  const asEarlier = (cells: SearchCell[]) =>
    cells.map((cell) => earlierCell(cell.box, cell.rows, cell.patients));

  const perCodeEarlier = [
    earlierCell({ release: all }, 50_000_000, 347_000),
    ...asEarlier(perCode(all, 2_380_000, 347_000, newCell)),
  ].reverse();
  const meanNews = byCodeSexAge(newCell);
  const meanEarlier = asEarlier(meanNews).reverse();
  return [
    { name: 'mean by code, sex and age band', news: meanNews, earlier: perCodeEarlier },
    {
      name: 'one hospital, one month, per code',
      news: [
        ...perCode(one, 42_500, 37_200, newCell),
        newCell('total', { release: one }, 893_000, 210_000),
      ],
      earlier: [...meanEarlier, ...perCodeEarlier],
    },
  ];
}

/**
 * A search's answer as plain data, cells by their fields: two answers are the same when this
 * is equal, candidate for candidate in order, term for term, region box for region box.
 */
export function searchAsData(found: ReturnType<typeof searchCombinations>) {
  const cell = (one: SearchCell) => ({
    id: one.id,
    box: one.box,
    rows: one.rows,
    patients: one.patients,
    earlier: one.earlier,
  });
  return {
    candidates: found.candidates.map((candidate) => ({
      terms: candidate.terms.map((term) => ({
        cell: cell(term.cell),
        coefficient: term.coefficient,
      })),
      combination: candidate.combination,
    })),
    evaluated: found.evaluated,
    unexamined: found.unexamined.map(cell),
  };
}
