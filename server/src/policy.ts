import type { Filter, QuerySpec } from '@medlake/shared';
import type { AccessLevel, Grant } from './catalog/grants-repository.ts';
import type { User } from './catalog/users-repository.ts';
import { AppError, type ErrorDetail } from './errors.ts';
import type { QueryColumn } from './query/query-columns.ts';

/**
 * Authorization, in one place: who may read what. Routes and CLI commands ask here and
 * nowhere else, so that a rule is changed once. The operator at the CLI has the machine, its
 * keys and its files, and may do what an admin may; the CLI asks here for the users it acts
 * for (`medlake query --as`).
 */

/** What a user may read of one dataset, from their active grants. */
export type DatasetAccess = {
  level: AccessLevel;
  /** The hospitals whose releases the user may read; null: all of them. */
  hospitals: string[] | null;
};

/**
 * The access a user's grants give on a dataset: the highest level among them, over the union
 * of their hospitals. Data is reached only through grants, whatever the user's role.
 */
export function datasetAccess(user: User, grants: readonly Grant[]): DatasetAccess | undefined {
  if (user.disabledAt !== null || grants.length === 0) return undefined;
  const level: AccessLevel = grants.some((grant) => grant.level === 'row') ? 'row' : 'aggregate';
  // The hospitals of the grants at that level: a row grant for one hospital does not lift an
  // aggregate grant for another to row level.
  const atLevel = grants.filter((grant) => grant.level === level);
  const hospitals = atLevel.some((grant) => grant.hospitals === null)
    ? null
    : [...new Set(atLevel.flatMap((grant) => grant.hospitals ?? []))];
  return { level, hospitals };
}

export function assertCanQuery(
  datasetId: string,
  access: DatasetAccess | undefined,
): asserts access is DatasetAccess {
  if (!access) {
    throw new AppError(
      'FORBIDDEN',
      `You have no access to dataset ${datasetId}. Request access from an administrator.`,
    );
  }
}

/**
 * Checks a query spec against the access level: aggregate users get no row-level output and
 * may not name linkage columns (the patient or encounter pseudonyms), which would single out
 * one person.
 */
export function assertSpecAllowed(
  spec: QuerySpec,
  access: DatasetAccess,
  columns: ReadonlyMap<string, QueryColumn>,
): void {
  if (access.level === 'row') return;
  const problems: ErrorDetail[] = [];
  if (spec.select) {
    problems.push({
      path: 'select',
      message: 'row-level output needs row access to this dataset; you have aggregate access',
    });
  }
  const linkage = (name: string, path: string) => {
    if (columns.get(name)?.linkage) {
      problems.push({
        path,
        message: `${name} identifies a person or visit; with aggregate access it can only be counted (measure "patients")`,
      });
    }
  };
  const walk = (filter: Filter, path: string): void => {
    if ('and' in filter) return filter.and.forEach((part, i) => walk(part, `${path}.and[${i}]`));
    if ('or' in filter) return filter.or.forEach((part, i) => walk(part, `${path}.or[${i}]`));
    if ('not' in filter) return walk(filter.not, `${path}.not`);
    if ('column' in filter && filter.column) linkage(filter.column, `${path}.column`);
  };
  if (spec.where) walk(spec.where, 'where');
  spec.cohort?.criteria.forEach((criterion, i) =>
    walk(criterion.where, `cohort.criteria[${i}].where`),
  );
  spec.groupBy.forEach((group, i) => linkage(group.column, `groupBy[${i}].column`));
  spec.measures.forEach((measure, i) => {
    if ('column' in measure) linkage(measure.column, `measures[${i}].column`);
  });
  if (problems.length > 0) {
    throw new AppError(
      'FORBIDDEN',
      `Not allowed with aggregate access: ${problems[0]?.message}`,
      problems,
    );
  }
}

/** Query jobs and their results belong to the user who ran them. */
export function assertOwnsQuery(user: User, job: { userId: string }): void {
  // Answered as "not found" so that guessing ids tells nothing about other users' queries.
  if (job.userId !== user.id) throw new AppError('NOT_FOUND', 'Query not found');
}

/**
 * Uploads come from hospital data stewards (and admins). Which hospitals a steward may upload
 * for is recorded with the accounts issue; until then any steward may upload for any hospital.
 */
export function assertCanUpload(user: User): void {
  if (user.role !== 'steward' && user.role !== 'admin') {
    throw new AppError('FORBIDDEN', 'Uploading needs the steward role');
  }
}

/** The audit log is read by admins and auditors. */
export function assertCanReadAudit(user: User): void {
  if (user.role !== 'admin' && user.role !== 'auditor') {
    throw new AppError('FORBIDDEN', 'Reading the audit log needs the auditor or admin role');
  }
}
