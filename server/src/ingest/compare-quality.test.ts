import type { CodeProfile } from '@medlake/shared';
import { describe, expect, it } from 'vitest';
import { compareQuality } from './compare-quality.ts';

function code(
  code: string,
  count: number,
  mean: number,
  q1 = mean - 10,
  q3 = mean + 10,
): CodeProfile {
  return {
    code,
    label: null,
    unit: 'mg/dL',
    count,
    numericCount: count,
    min: 0,
    max: 200,
    mean,
    q1,
    median: mean,
    q3,
  };
}

describe('compareQuality', () => {
  it('reports vanished and new codes, moved means and a changed row count', () => {
    const previous = {
      rows: 1000,
      codes: [code('glucose', 400, 100), code('sodium', 300, 140), code('rare', 3, 1)],
    };
    const current = { rows: 400, codes: [code('glucose', 200, 140), code('potassium', 200, 4)] };
    const changes = compareQuality(current, previous);
    expect(changes.map((change) => [change.kind, change.code])).toEqual([
      ['row_count_changed', null],
      ['code_vanished', 'sodium'],
      ['distribution_moved', 'glucose'],
      ['code_appeared', 'potassium'],
    ]);
  });

  it('stays quiet when nothing notable changed', () => {
    const month = { rows: 1000, codes: [code('glucose', 400, 100)] };
    const next = { rows: 1100, codes: [code('glucose', 420, 101)] };
    expect(compareQuality(next, month)).toEqual([]);
  });
});
