import {
  tokenScopes,
  type Filter,
  type QuerySpec,
  type SessionNeed,
  type TokenScope,
} from '@medlake/shared';
import type { AccessLevel, Grant } from './catalog/grants-repository.ts';
import type { UserRole } from './catalog/schema.ts';
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
  /**
   * Who results are released to, for the release ledger: the project whose grant gives the
   * access (`project:ID`), or the user when their own grant does (`user:ID`).
   */
  holder: string;
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
  const projectGrant = atLevel
    .filter((grant) => grant.projectId !== null)
    .sort((a, b) => a.id.localeCompare(b.id))[0];
  const holder = projectGrant ? `project:${projectGrant.projectId}` : `user:${user.id}`;
  return { level, hospitals, holder };
}

export function assertCanQuery(
  datasetId: string,
  access: DatasetAccess | undefined,
): asserts access is DatasetAccess {
  if (!access) {
    throw new AppError(
      'no_dataset_access',
      `You have no access to dataset ${datasetId}. Request access from an administrator.`,
    );
  }
}

/**
 * Checks a query spec against the access level: aggregate users get no row-level output, may
 * not name linkage columns (the patient or encounter pseudonyms), which would single out one
 * person, and get no minimum or maximum, which is one person's value.
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
    // One patient decides a minimum or a maximum, however large the group: an exact timestamp,
    // an extreme result, a text value.
    if (measure.fn === 'min' || measure.fn === 'max') {
      problems.push({
        path: `measures[${i}].fn`,
        message: `${measure.fn} is one patient's value; with aggregate access ask for a percentile instead (for example p 0.05 or 0.95), which is shown when enough patients lie beyond it`,
      });
    }
  });
  if (problems.length > 0) {
    throw new AppError(
      'rule_refused',
      `Not allowed with aggregate access: ${problems[0]?.message}`,
      problems,
    );
  }
}

/** Query jobs and their results belong to the user who ran them. */
export function assertOwnsQuery(user: User, job: { userId: string }): void {
  // Answered as "not found" so that guessing ids tells nothing about other users' queries.
  if (job.userId !== user.id) throw new AppError('query_not_found', 'Query not found');
}

/** A saved query is deleted by its author only; project members may read and run it. */
export function assertOwnsSavedQuery(user: User, saved: { userId: string }): void {
  if (saved.userId !== user.id) {
    throw new AppError('not_author', 'Only the author of a saved query may delete it');
  }
}

/** A query is shared only with a project its author is a member of. */
export function assertProjectMember(projectId: string, projects: readonly { id: string }[]): void {
  if (!projects.some((project) => project.id === projectId)) {
    throw new AppError(
      'not_project_member',
      `You are not a member of project ${projectId}; an administrator adds members`,
    );
  }
}

/**
 * The hospitals whose uploads a user may make and read the reports of: every one for an
 * admin (null), a steward's assigned ones, none for anyone else.
 */
export function uploadHospitals(user: User, assigned: readonly string[]): readonly string[] | null {
  if (user.role === 'admin') return null;
  return user.role === 'steward' ? assigned : [];
}

export function assertUploadsFor(
  user: User,
  assigned: readonly string[],
  hospitalId: string,
): void {
  const allowed = uploadHospitals(user, assigned);
  if (allowed !== null && !allowed.includes(hospitalId)) {
    throw new AppError(
      'not_steward',
      `You are not a data steward of hospital ${hospitalId}; an administrator assigns stewards to hospitals`,
    );
  }
}

/**
 * What a session must do before it may do anything else: replace a one-time password, or
 * (for an admin signed in with a password) set up the second factor admins are required to
 * have. An OpenID sign-in leaves the second factor to the identity provider.
 */
export function sessionNeeds(user: User, method: 'password' | 'oidc'): SessionNeed[] {
  const needs: SessionNeed[] = [];
  if (user.mustChangePassword) needs.push('password_change');
  if (user.role === 'admin' && !user.totpEnabled && method === 'password') needs.push('totp_setup');
  return needs;
}

/** The token scopes a role can make use of: the scopes of the routes its role may call. */
export function scopesOfRole(role: UserRole): TokenScope[] {
  const scopes = new Set<TokenScope>();
  for (const rule of Object.values(routeRules)) {
    if (rule.who === 'anyone' || rule.scope === null) continue;
    if (rule.who === 'signed-in' || rule.who.includes(role)) scopes.add(rule.scope);
  }
  return tokenScopes.filter((scope) => scopes.has(scope));
}

/** Who may call a route at all; what they may then reach is decided further in (grants, owners). */
export type RouteRule =
  | {
      /** No sign-in: health, signing in, and download links (the signed link is the key). */
      who: 'anyone';
    }
  | {
      who: 'signed-in' | readonly UserRole[];
      /** The scope a token needs; null: any token, as long as the route allows tokens. */
      scope: TokenScope | null;
      /** Only with a browser session, never a token (managing one's own credentials). */
      sessionOnly?: boolean;
      /** Open to a session that must first change its password or set up its second factor. */
      whileRestricted?: boolean;
    };

const signedIn = (scope: TokenScope | null, extra: Partial<RouteRule> = {}): RouteRule => ({
  who: 'signed-in',
  scope,
  ...extra,
});
const roles = (who: readonly UserRole[], scope: TokenScope): RouteRule => ({ who, scope });
/**
 * Every role but the auditor's: the auditor reads (the audit log, the catalog's datasets) and
 * changes nothing but their own sign-in, so that their account can vouch for the log it checks.
 */
const acting = (scope: TokenScope): RouteRule =>
  roles(['researcher', 'steward', 'admin', 'custodian'], scope);

/**
 * Every API route and who may call it, by method and path. A route that is not listed here is
 * refused for everyone, and the access-matrix test fails until it has a rule.
 */
export const routeRules: Readonly<Record<string, RouteRule>> = {
  'GET /api/health': { who: 'anyone' },

  'POST /api/v1/session': { who: 'anyone' },
  'GET /api/v1/auth/methods': { who: 'anyone' },
  'GET /api/v1/oidc/login': { who: 'anyone' },
  'GET /api/v1/oidc/callback': { who: 'anyone' },
  'GET /api/v1/session': signedIn(null, { whileRestricted: true }),
  'DELETE /api/v1/session': signedIn(null, { sessionOnly: true, whileRestricted: true }),
  'POST /api/v1/me/password': signedIn(null, { sessionOnly: true, whileRestricted: true }),
  'POST /api/v1/me/totp': signedIn(null, { sessionOnly: true, whileRestricted: true }),
  'POST /api/v1/me/totp/confirm': signedIn(null, { sessionOnly: true, whileRestricted: true }),
  'GET /api/v1/me/tokens': signedIn(null, { sessionOnly: true }),
  'POST /api/v1/me/tokens': signedIn(null, { sessionOnly: true }),
  'DELETE /api/v1/me/tokens/:id': signedIn(null, { sessionOnly: true }),

  'GET /api/v1/datasets': signedIn('query'),
  'GET /api/v1/datasets/:id/dictionary': signedIn('query'),
  'POST /api/v1/queries': acting('query'),
  'POST /api/v1/queries/cost': acting('query'),
  'GET /api/v1/queries': signedIn('query'),
  'GET /api/v1/queries/:id': signedIn('query'),
  'DELETE /api/v1/queries/:id': acting('query'),
  'GET /api/v1/queries/:id/results': signedIn('query'),
  'POST /api/v1/queries/:id/exports': acting('query'),
  'GET /api/v1/downloads/:id': { who: 'anyone' },
  'POST /api/v1/saved-queries': acting('query'),
  'GET /api/v1/saved-queries': signedIn('query'),
  'GET /api/v1/saved-queries/:id': signedIn('query'),
  'PATCH /api/v1/saved-queries/:id': acting('query'),
  'DELETE /api/v1/saved-queries/:id': acting('query'),
  'GET /api/v1/me/projects': signedIn('query'),

  'POST /api/uploads': roles(['steward', 'admin'], 'upload'),
  'GET /api/v1/uploads': roles(['steward', 'admin'], 'upload'),
  'GET /api/v1/uploads/:id': roles(['steward', 'admin'], 'upload'),
  'GET /api/v1/uploads/:id/preview': roles(['steward', 'admin'], 'upload'),
  'GET /api/v1/uploads/:id/problems': roles(['steward', 'admin'], 'upload'),
  'GET /api/v1/releases': roles(['steward', 'admin'], 'upload'),
  'POST /api/v1/upload-sessions': roles(['steward', 'admin'], 'upload'),
  'GET /api/v1/upload-sessions/:id': roles(['steward', 'admin'], 'upload'),
  'GET /api/v1/upload-sessions/:id/parts/:part/target': roles(['steward', 'admin'], 'upload'),
  'PUT /api/v1/upload-sessions/:id/parts/:part': roles(['steward', 'admin'], 'upload'),
  'POST /api/v1/upload-sessions/:id/complete': roles(['steward', 'admin'], 'upload'),
  'DELETE /api/v1/upload-sessions/:id': roles(['steward', 'admin'], 'upload'),

  'POST /api/v1/access-requests': acting('query'),
  'GET /api/v1/access-requests': signedIn('query'),

  'GET /api/v1/admin/users': roles(['admin'], 'admin'),
  'POST /api/v1/admin/users': roles(['admin'], 'admin'),
  'PATCH /api/v1/admin/users/:id': roles(['admin'], 'admin'),
  'POST /api/v1/admin/users/:id/reset-password': roles(['admin'], 'admin'),
  'PUT /api/v1/admin/users/:id/hospitals/:hospitalId': roles(['admin'], 'admin'),
  'DELETE /api/v1/admin/users/:id/hospitals/:hospitalId': roles(['admin'], 'admin'),
  'GET /api/v1/admin/grants': roles(['admin'], 'admin'),
  'POST /api/v1/admin/grants': roles(['admin'], 'admin'),
  'DELETE /api/v1/admin/grants/:id': roles(['admin'], 'admin'),
  'GET /api/v1/admin/projects': roles(['admin'], 'admin'),
  'POST /api/v1/admin/projects': roles(['admin'], 'admin'),
  'PUT /api/v1/admin/projects/:id/members/:userId': roles(['admin'], 'admin'),
  'DELETE /api/v1/admin/projects/:id/members/:userId': roles(['admin'], 'admin'),
  'GET /api/v1/admin/access-requests': roles(['admin'], 'admin'),
  'GET /api/v1/admin/hospitals': roles(['admin'], 'admin'),
  'POST /api/v1/admin/hospitals': roles(['admin'], 'admin'),
  'GET /api/v1/admin/jobs': roles(['admin'], 'admin'),
  'DELETE /api/v1/admin/queries/:id': roles(['admin'], 'admin'),
  'GET /api/v1/admin/storage': roles(['admin'], 'admin'),
  'GET /api/v1/admin/exports': roles(['admin'], 'admin'),
  'POST /api/v1/admin/exports/:id/review': roles(['admin'], 'admin'),
  'GET /api/v1/admin/results': roles(['admin'], 'admin'),
  'POST /api/v1/admin/results/:id/review': roles(['admin'], 'admin'),
  'POST /api/v1/admin/access-requests/:id/decision': roles(['admin'], 'admin'),

  'GET /api/v1/audit': roles(['auditor', 'admin'], 'audit'),
  'GET /api/v1/audit/export': roles(['auditor', 'admin'], 'audit'),
  'GET /api/v1/audit/suspicious': roles(['auditor', 'admin'], 'audit'),
  'POST /api/v1/audit/verify': roles(['auditor', 'admin'], 'audit'),
};

/** The rule of a route; HEAD follows GET. */
export function routeRuleFor(method: string, url: string): RouteRule | undefined {
  return routeRules[`${method === 'HEAD' ? 'GET' : method} ${url}`];
}

/** Who a request turned out to be, as the route rules need to know it. */
export type RequestIdentity = {
  user: User;
  /** A token's scopes; null for a browser session. */
  scopes: readonly TokenScope[] | null;
  needs: readonly SessionNeed[];
};

/** Checks a route's rule against the signed-in identity (or its absence). */
export function assertRouteAllowed(rule: RouteRule, identity: RequestIdentity | undefined): void {
  if (rule.who === 'anyone') return;
  if (!identity) {
    throw new AppError(
      'unauthenticated',
      'Sign in first, or send a personal API token as "Authorization: Bearer <token>"',
    );
  }
  if (identity.needs.length > 0 && !rule.whileRestricted) {
    throw identity.needs.includes('password_change')
      ? new AppError(
          'password_change_required',
          'Choose a new password first: yours was set by an administrator',
        )
      : new AppError(
          'mfa_setup_required',
          'Set up your authenticator app first: administrators sign in with a second factor',
        );
  }
  if (rule.who !== 'signed-in' && !rule.who.includes(identity.user.role)) {
    throw new AppError('role_required', `This needs the ${rule.who.join(' or ')} role`);
  }
  if (identity.scopes !== null) {
    if (rule.sessionOnly) {
      throw new AppError(
        'session_required',
        'This is done signed in to the web app, not with a token',
      );
    }
    if (rule.scope !== null && !identity.scopes.includes(rule.scope)) {
      throw new AppError('scope_missing', `The API token lacks the "${rule.scope}" scope`);
    }
  }
}
