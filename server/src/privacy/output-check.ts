import type { OutputReport, QuerySummary } from '@medlake/shared';
import type { PlatformParts } from '../platform-parts.ts';

/**
 * The output checks every export goes through, and their report: which rules ran and what they
 * removed (from the query's disclosure control), what the answer cost of the privacy budget,
 * and two checks an export can fail, for a human to look at where the dataset has an airlock:
 * row-level records leaving the platform, and counts from 1 to threshold−1 that a row-level
 * user's aggregate result shows unsuppressed.
 */
export async function checkOutput(
  platform: PlatformParts,
  input: { summary: QuerySummary; resultLocation: string; airlock: boolean },
): Promise<OutputReport> {
  const { summary } = input;
  const checks: OutputReport['checks'] = [];
  if (summary.kind === 'rows') {
    checks.push({
      check: 'row_level',
      passed: false,
      detail: `The result holds ${summary.rowCount.toLocaleString('en-US')} row-level records.`,
    });
  } else {
    const small = await smallCells(platform, summary, input.resultLocation);
    checks.push({
      check: 'small_cells',
      passed: small === 0,
      detail:
        small === 0
          ? `No count from 1 to ${summary.threshold - 1} is shown.`
          : `${small} ${small === 1 ? 'group shows a count' : 'groups show counts'} from 1 to ${summary.threshold - 1} (row-level access: nothing was suppressed).`,
    });
  }
  const removed = summary.rules.filter((rule) => rule.rule !== 'noise');
  checks.push({
    check: 'disclosure_control',
    passed: true,
    detail: removed.map((rule) => rule.description).join(' ') || 'No rule applied.',
  });
  const noise = summary.rules.find((rule) => rule.rule === 'noise');
  if (noise) checks.push({ check: 'privacy_budget', passed: true, detail: noise.description });
  return { checks, needsReview: input.airlock && checks.some((check) => !check.passed) };
}

/** How many groups of a stored aggregate result show a count below the threshold. */
async function smallCells(
  platform: PlatformParts,
  summary: QuerySummary,
  resultLocation: string,
): Promise<number> {
  const { dialect } = platform.engine;
  const counts = summary.columns.filter(
    (column) => column.kind === 'measure' && (column.fn === 'count' || column.fn === 'patients'),
  );
  if (counts.length === 0) return 0;
  const threshold = dialect.placeholder(1);
  const small = counts
    .map((column) => {
      const name = dialect.quoteIdentifier(column.name);
      return `(NOT suppressed AND ${name} > 0 AND ${name} < ${threshold})`;
    })
    .join(' OR ');
  const [row] = await platform.engine.rows({
    sql: `SELECT count(*) AS n FROM ${dialect.scanParquet([resultLocation])} AS r WHERE ${small}`,
    params: [summary.threshold],
  });
  return Number(row?.n ?? 0);
}
