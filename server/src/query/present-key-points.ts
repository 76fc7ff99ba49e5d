import type { QuerySpec, QuerySummary } from '@medlake/shared';
import type { DisclosedResult } from './disclosure.ts';

/**
 * The key points of a query's answer: the few sentences the web app, the CLI and the Python
 * client show above the table. They are built from figures already disclosed, so they say no
 * more than the result does.
 */

/** The key points of a row-level result. */
export function rowKeyPoints(
  rowCount: number,
  releases: QuerySummary['releases'],
  spec: QuerySpec,
): string[] {
  const limited =
    spec.limit !== undefined && rowCount === spec.limit
      ? ` (limited to ${spec.limit.toLocaleString('en-US')})`
      : '';
  return [
    `${rowCount.toLocaleString('en-US')} ${rowCount === 1 ? 'row matches' : 'rows match'}${limited}.`,
    describeReleases(releases),
  ];
}

/** The key points of an aggregate result: what matched, its groups, the rules that applied. */
export function aggregateKeyPoints(
  matching: { rows: number | string; patients: number | string },
  groups: { shown: number; suppressed: number; totalOverShown: boolean },
  disclosed: DisclosedResult,
  releases: QuerySummary['releases'],
  spec: QuerySpec,
): string[] {
  const count = (value: number | string) =>
    typeof value === 'number' ? value.toLocaleString('en-US') : value;
  const cohort = spec.cohort
    ? ` of the cohort (patients who met ${spec.cohort.criteria.length === 1 ? 'its criterion' : `${spec.cohort.match === 'all' ? 'all' : 'any'} of its ${spec.cohort.criteria.length} criteria`})`
    : '';
  const points = [
    typeof matching.rows === 'string'
      ? typeof matching.patients === 'string' && matching.patients.startsWith('<')
        ? `Fewer than ${matching.patients.slice(1)} patients${cohort} match.`
        : `The number of patients${cohort} that match is held back.`
      : groups.totalOverShown
        ? `${count(matching.patients)} patients${cohort} and ${count(matching.rows)} rows in the groups shown.`
        : `${count(matching.patients)} patients${cohort} and ${count(matching.rows)} rows match.`,
  ];
  if (spec.groupBy.length > 0) {
    points.push(
      `${groups.shown.toLocaleString('en-US')} ${groups.shown === 1 ? 'group' : 'groups'}${groups.suppressed > 0 ? `, ${groups.suppressed} of them suppressed` : ''}.`,
    );
  }
  for (const rule of disclosed.rules) points.push(rule.description);
  points.push(describeReleases(releases));
  return points;
}

function describeReleases(releases: QuerySummary['releases']): string {
  if (releases.count === 0) return 'No release matched the filters, so no data was read.';
  const months = releases.months;
  const span = months.length === 1 ? months[0] : `${months[0]} to ${months.at(-1)}`;
  return `Read ${releases.count} ${releases.count === 1 ? 'release' : 'releases'}: ${releases.hospitals.length} ${releases.hospitals.length === 1 ? 'hospital' : 'hospitals'}, ${span}.`;
}
