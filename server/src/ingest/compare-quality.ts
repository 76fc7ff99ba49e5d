import type { CodeProfile, QualityChange } from '@medlake/shared';

/** Codes seen fewer times than this are too rare to call their absence or shift a change. */
const minimumCount = 10;
/** A mean that moves by more than this many (robust) standard deviations is flagged. */
const movedBy = 0.5;
/** A row count that changes by more than this share is flagged. */
const rowShare = 0.5;

type Snapshot = { rows: number; codes: CodeProfile[] };

/** What changed against the hospital's previous month: the data steward's early warning. */
export function compareQuality(current: Snapshot, previous: Snapshot): QualityChange[] {
  const changes: QualityChange[] = [];
  const before = new Map(previous.codes.map((code) => [code.code, code]));
  const now = new Map(current.codes.map((code) => [code.code, code]));

  if (previous.rows > 0 && Math.abs(current.rows - previous.rows) / previous.rows > rowShare) {
    changes.push({
      kind: 'row_count_changed',
      code: null,
      message: `${current.rows} rows against ${previous.rows} the month before`,
    });
  }
  for (const [code, old] of before) {
    if (old.count >= minimumCount && !now.has(code)) {
      changes.push({
        kind: 'code_vanished',
        code,
        message: `${describe(old)} had ${old.count} rows the month before and has none now`,
      });
    }
  }
  for (const [code, fresh] of now) {
    const old = before.get(code);
    if (!old) {
      if (fresh.count >= minimumCount) {
        changes.push({
          kind: 'code_appeared',
          code,
          message: `${describe(fresh)} is new, with ${fresh.count} rows`,
        });
      }
      continue;
    }
    const moved = meanShift(old, fresh);
    if (moved !== undefined && moved > movedBy) {
      changes.push({
        kind: 'distribution_moved',
        code,
        message: `the mean of ${describe(fresh)} moved from ${round(old.mean)} to ${round(fresh.mean)}${fresh.unit ? ` ${fresh.unit}` : ''}, ${round(moved)} standard deviations`,
      });
    }
  }
  return changes;
}

/** How far the mean moved, in standard deviations estimated from last month's quartiles. */
function meanShift(old: CodeProfile, fresh: CodeProfile): number | undefined {
  if (old.numericCount < minimumCount || fresh.numericCount < minimumCount) return undefined;
  if (old.mean === null || fresh.mean === null || old.q1 === null || old.q3 === null)
    return undefined;
  // For a normal distribution the interquartile range is 1.349 standard deviations.
  const sd = (old.q3 - old.q1) / 1.349;
  if (sd <= 0) return fresh.mean === old.mean ? 0 : Number.POSITIVE_INFINITY;
  return Math.abs(fresh.mean - old.mean) / sd;
}

function describe(code: CodeProfile): string {
  return code.label ? `${code.code} (${code.label})` : code.code;
}

function round(value: number | null): string {
  return value === null ? '-' : String(Math.round(value * 100) / 100);
}
