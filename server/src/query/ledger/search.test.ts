import { describe, expect, it } from 'vitest';
import { between, combine, otherValues, point, points, type Box } from './regions.ts';
import { ledgerPoolSize } from '../release-ledger.ts';
import { searchInWorker } from './search-threads.ts';
import {
  defaultSearchBounds,
  searchCombinations,
  type SearchBounds,
  type SearchCell,
} from './search.ts';

/** The search as the ledger ran it until 2026-12-07, in the main thread, and as it runs now. */
const searches: Array<
  [
    string,
    (
      news: SearchCell[],
      earlier: SearchCell[],
      bounds?: SearchBounds,
    ) => Promise<ReturnType<typeof searchCombinations>>,
  ]
> = [
  [
    'in the main thread',
    async (news, earlier, bounds) => searchCombinations(news, earlier, bounds),
  ],
  ['in a worker thread', (news, earlier, bounds) => searchInWorker(news, earlier, bounds)],
];

const releases = points(['r1', 'r2']);
const cell = (id: string, box: Box, earlier = true): SearchCell => ({
  id,
  box,
  rows: 100,
  patients: 50,
  earlier,
});

describe.each(searches)('the ledger’s geometry, searched %s', (where, search) => {
  it('sees the three totals: at h01, at h02, everywhere but one ZIP area', async () => {
    const h01 = { release: point('r1') };
    const h02 = { release: point('r2') };
    const notZ = { release: releases, zip: otherValues(point('905')) };
    const found = combine([
      { coefficient: 1, box: h01 },
      { coefficient: 1, box: h02 },
      { coefficient: -1, box: notZ },
    ]);
    expect(found.kind).toBe('region');
    if (found.kind !== 'region') return;
    // The region is the ZIP area and the rows without one, at both hospitals.
    for (const box of found.boxes) {
      expect(box.zip?.nulls || box.zip?.ranges.length === 1).toBe(true);
    }
    const searched = await search([cell('new', notZ, false)], [cell('a', h01), cell('b', h02)]);
    expect(searched.candidates.map((c) => c.terms.map((t) => t.cell.id).sort())).toContainEqual([
      'a',
      'b',
      'new',
    ]);
  });

  it('sees one cell within another across filters and groups, whatever they are named', () => {
    const code = { release: releases, code: point('718-7') };
    const codeBefore = {
      release: releases,
      code: point('718-7'),
      observed_at: between(undefined, 1_600_000_000_000, { to: true }),
    };
    const found = combine([
      { coefficient: 1, box: code },
      { coefficient: -1, box: codeBefore },
    ]);
    expect(found.kind).toBe('region');
    expect(
      combine([
        { coefficient: 1, box: code },
        { coefficient: -1, box: { release: releases, sex: point('F') } },
      ]).kind,
    ).toBe('mixed');
  });

  it('finds a cancelling sum, whose patients need not cancel: X or Y, less X, less Y', () => {
    const x = { release: releases, code: point('x') };
    const y = { release: releases, code: point('y') };
    const both = { release: releases, code: points(['x', 'y']) };
    expect(
      combine([
        { coefficient: 1, box: both },
        { coefficient: -1, box: x },
        { coefficient: -1, box: y },
      ]).kind,
    ).toBe('zero');
  });

  it('sees an earlier total less two groups of a new result under a narrower filter', async () => {
    // All patients, then those of code x by sex: the total less the two groups is the patients
    // without x, whom neither group meets.
    const total = cell('total', { release: releases }, true);
    const women = cell('F', { release: releases, code: point('x'), sex: point('F') }, false);
    const men = cell('M', { release: releases, code: point('x'), sex: point('M') }, false);
    const found = await search([women, men], [total]);
    expect(found.candidates.map((c) => c.terms.map((t) => t.cell.id).sort())).toContainEqual([
      'F',
      'M',
      'total',
    ]);
  });

  it('measures the search at its bound: the pool of earlier cells, 50 new ones', async () => {
    // Earlier: results of 50 groups, by code, by value bin, by month, by sex and race, some
    // of them over one hospital, some without one ZIP area.
    const earlier: SearchCell[] = [];
    for (let result = 0; earlier.length < ledgerPoolSize; result += 1) {
      for (let group = 0; group < 50; group += 1) {
        const box: Box = { release: result % 2 ? releases : point('r1') };
        if (result % 4 === 0) box.code = point(`c${group}`);
        else if (result % 4 === 1) box.value = between(group, group + 1, { to: true });
        else if (result % 4 === 2) {
          box.observed_at = between(group * 1e9, (group + 1) * 1e9, { to: true });
        } else {
          box.sex = point(group % 2 ? 'F' : 'M');
          box.race = point(`r${group % 25}`);
        }
        if (result % 3 === 0) box.zip = otherValues(point(String(900 + (result % 30))));
        earlier.push(cell(`e${result}-${group}`, box));
      }
      earlier.push(cell(`t${result}`, { release: result % 2 ? releases : point('r1') }));
    }
    earlier.reverse();
    const scenarios = {
      'by code and sex': (group: number): Box => ({
        release: releases,
        code: point(`c${group}`),
        sex: point('F'),
      }),
      'by sex and race, without a ZIP area': (group: number): Box => ({
        release: releases,
        sex: point(group % 2 ? 'F' : 'M'),
        race: point(`r${group % 25}`),
        zip: otherValues(point('905')),
      }),
      'by value bin at one hospital': (group: number): Box => ({
        release: point('r2'),
        value: between(group / 2, group / 2 + 0.5, { to: true }),
      }),
    };
    for (const [name, boxOf] of Object.entries(scenarios)) {
      const news = Array.from({ length: 50 }, (_, group) => cell(`n${group}`, boxOf(group), false));
      const started = performance.now();
      const found = await search(news, earlier.slice(0, ledgerPoolSize));
      const milliseconds = performance.now() - started;
      console.log(
        `ledger search ${where}, ${name}: ${earlier.length} earlier cells, ${news.length} new, ${found.evaluated} combinations evaluated, ${found.candidates.length} candidates (${found.candidates.filter((c) => c.terms.length === 3).length} of three cells), ${found.unexamined.length} unexamined, ${Math.round(milliseconds)} ms`,
      );
      expect(found.evaluated).toBeLessThanOrEqual(defaultSearchBounds.combinations + 1);
    }
  });
});
