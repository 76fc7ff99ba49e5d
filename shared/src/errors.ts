import { z } from 'zod';

/** One error the API can answer with: its HTTP status, what it means, what a client can do. */
export type ErrorCodeEntry = { status: number; meaning: string; action: string };

/**
 * Every error the API can answer with, one code per cause, so that a client can tell a spent
 * privacy budget from a full queue from sign-in throttling without reading the message. The
 * server raises errors by code and takes the status from here; the web app, the CLI and the
 * Python client branch on the code, never on the message text. docs/errors.md and the OpenAPI
 * document (`x-error-codes`) show this table; a test keeps them equal.
 */
export const errorCatalog = {
  invalid_input: {
    status: 400,
    meaning: 'A field of the request is missing or malformed; `details` names it.',
    action: 'Correct the fields `details` names and send again.',
  },
  invalid_spec: {
    status: 400,
    meaning: 'The query spec is not valid; `details` gives the path in the spec of each problem.',
    action: 'Correct the spec at the paths `details` gives.',
  },
  too_many_groups: {
    status: 400,
    meaning: 'The query makes more groups than one answer may hold.',
    action: 'Group by fewer or coarser columns, or filter first.',
  },
  measure_not_private: {
    status: 400,
    meaning: 'The dataset answers with noise, and a measure asked for cannot carry it.',
    action: 'Ask only the measures the message lists (counts, and the sums it names).',
  },
  contract_invalid: {
    status: 400,
    meaning: 'A dataset contract or header mapping is not valid; `details` names the problems.',
    action: 'Correct the contract or mapping and send it again.',
  },
  upload_invalid: {
    status: 400,
    meaning: 'The uploaded file or its parts cannot be used (not readable as CSV, wrong parts).',
    action: 'Fix the file or the parts as the message says and upload again.',
  },
  password_rejected: {
    status: 400,
    meaning: 'The new password does not meet the password policy.',
    action: 'Choose another password; `details` says why this one failed.',
  },
  code_mismatch: {
    status: 400,
    meaning: 'The authenticator code does not match the secret being set up.',
    action: 'Read the current code from the app and send it again.',
  },
  unauthenticated: {
    status: 401,
    meaning: 'The request carries no session and no API token.',
    action: 'Sign in, or send a personal API token as `Authorization: Bearer <token>`.',
  },
  token_invalid: {
    status: 401,
    meaning: 'The API token is unknown, expired or revoked.',
    action: 'Make a new token on your profile page.',
  },
  session_expired: {
    status: 401,
    meaning: 'The session has ended (signed out, idle too long, or ended by an administrator).',
    action: 'Sign in again.',
  },
  sign_in_failed: {
    status: 401,
    meaning: 'The e-mail, password, authenticator code or single sign-on answer was not accepted.',
    action: 'Check what you entered and try again; failures are counted towards a lock.',
  },
  mfa_required: {
    status: 401,
    meaning: 'The password was right; this account also needs its authenticator code.',
    action: 'Send the sign-in again with the six-digit code in `code`.',
  },
  no_dataset_access: {
    status: 403,
    meaning:
      'You hold no grant in force on the dataset (an ended one says grant_expired or grant_revoked).',
    action: 'Request access to the dataset; an administrator decides.',
  },
  grant_expired: {
    status: 403,
    meaning: 'Your grant on the dataset has expired.',
    action: 'Request access to the dataset again; an administrator decides.',
  },
  grant_revoked: {
    status: 403,
    meaning: 'Your grant on the dataset was revoked.',
    action: 'Ask the dataset administrators, or request access again.',
  },
  hospital_not_granted: {
    status: 403,
    meaning: 'A release the query names is of a hospital your grant does not cover.',
    action: 'Leave that release out, or request access to its hospital.',
  },
  rule_refused: {
    status: 403,
    meaning:
      'Aggregate access does not allow what the spec asks (row-level output, linkage columns, minimum or maximum); `details` says where.',
    action: 'Ask for an aggregate the rules allow, or request row access.',
  },
  access_lost: {
    status: 403,
    meaning: 'The result holds data your access no longer covers (a hospital, or row access).',
    action: 'Run the query again under your current access, then export it.',
  },
  role_required: {
    status: 403,
    meaning: 'This needs a role your account does not have.',
    action: 'Ask an administrator.',
  },
  scope_missing: {
    status: 403,
    meaning: 'The API token lacks the scope this route needs.',
    action: 'Make a token with that scope.',
  },
  session_required: {
    status: 403,
    meaning: 'This is done signed in to the web app, not with an API token.',
    action: 'Do it in the web app.',
  },
  csrf_token_missing: {
    status: 403,
    meaning: "A change sent with a session cookie lacks the session's CSRF token header.",
    action: 'Send the CSRF token the session gave in the header the message names.',
  },
  password_change_required: {
    status: 403,
    meaning: 'The password was set by an administrator and must be changed first.',
    action: 'Choose a new password on your profile page.',
  },
  mfa_setup_required: {
    status: 403,
    meaning: 'Administrators sign in with a second factor, and yours is not set up.',
    action: 'Set up your authenticator app on your profile page.',
  },
  wrong_password: {
    status: 403,
    meaning: 'The current password given to change it is wrong.',
    action: 'Enter your current password again.',
  },
  not_project_member: {
    status: 403,
    meaning: 'You are not a member of the project.',
    action: 'Ask an administrator to add you to the project.',
  },
  not_steward: {
    status: 403,
    meaning: 'You are not a data steward of the hospital.',
    action: 'Ask an administrator to assign you to the hospital.',
  },
  not_author: {
    status: 403,
    meaning: 'Only the author of a saved query may delete it.',
    action: 'Ask its author.',
  },
  own_review: {
    status: 403,
    meaning: 'A result or export is reviewed by an admin other than the one who asked for it.',
    action: 'Leave the review to another administrator.',
  },
  review_rejected: {
    status: 403,
    meaning:
      "An administrator reviewed the result in the dataset's airlock and did not release it.",
    action: 'Run a coarser query, or ask the dataset administrators.',
  },
  export_not_approved: {
    status: 403,
    meaning: 'The export, or the result it was made from, has not been approved for download.',
    action: 'Wait for the review, then download again.',
  },
  link_invalid: {
    status: 403,
    meaning: 'The download link is not valid (altered, or not for this export or user).',
    action: 'Make a new link from the query.',
  },
  link_expired: {
    status: 403,
    meaning: 'The download link has expired.',
    action: 'Make a new link from the query.',
  },
  route_closed: {
    status: 403,
    meaning: 'The route has no access rule, so nobody may call it.',
    action: 'Report it: it is a defect of the server.',
  },
  route_not_found: {
    status: 404,
    meaning: 'No API route has this method and path.',
    action: 'Check the path against the OpenAPI document at /api/docs.',
  },
  dataset_not_found: {
    status: 404,
    meaning: 'No dataset has this id.',
    action: 'List the datasets (GET /api/v1/datasets) and use one of their ids.',
  },
  release_not_found: {
    status: 404,
    meaning: 'No release has this id.',
    action: "Use a release id from the dataset's dictionary.",
  },
  hospital_not_found: {
    status: 404,
    meaning: 'No hospital has this id.',
    action: 'Use the id of a hospital the catalog lists.',
  },
  user_not_found: {
    status: 404,
    meaning: 'No user has this e-mail or id.',
    action: 'Check the e-mail, or add the user first.',
  },
  project_not_found: {
    status: 404,
    meaning: 'No project has this id.',
    action: 'Check the id, or create the project first.',
  },
  grant_not_found: {
    status: 404,
    meaning: 'No active grant has this id.',
    action: 'List the grants again: it may have been revoked already.',
  },
  access_request_not_found: {
    status: 404,
    meaning: 'No access request has this id.',
    action: 'List the access requests again.',
  },
  token_not_found: {
    status: 404,
    meaning: 'No API token of yours has this id.',
    action: 'List your tokens again: it may have been revoked already.',
  },
  query_not_found: {
    status: 404,
    meaning: 'No query of yours has this id.',
    action: 'List your queries again.',
  },
  saved_query_not_found: {
    status: 404,
    meaning: 'No saved query you may see has this id.',
    action: 'List your saved queries again.',
  },
  export_not_found: {
    status: 404,
    meaning: 'No export has this id.',
    action: 'Export the query again.',
  },
  upload_not_found: {
    status: 404,
    meaning: 'No upload of yours has this id.',
    action: 'Start the upload again.',
  },
  object_not_found: {
    status: 404,
    meaning: 'A stored object (a file of a result, an export or an upload) is missing.',
    action: 'Run the query or the upload again.',
  },
  pseudonym_not_found: {
    status: 404,
    meaning: 'No patient has this pseudonym in the vault.',
    action: 'Check the pseudonym and whose it is (a project or the platform).',
  },
  sso_not_configured: {
    status: 404,
    meaning: 'Single sign-on is not configured on this server.',
    action: 'Sign in with your e-mail and password.',
  },
  file_not_found: {
    status: 404,
    meaning: 'A file the command names cannot be read (CLI).',
    action: 'Check the path.',
  },
  already_exists: {
    status: 409,
    meaning: 'Something with this id or e-mail exists already (user, dataset, hospital, project).',
    action: 'Use another id, or change the one that exists.',
  },
  grant_exists: {
    status: 409,
    meaning: 'The holder has a grant of this level on the dataset already.',
    action: 'Revoke that grant first to change its hospitals or end date.',
  },
  request_pending: {
    status: 409,
    meaning: 'You have an access request for this dataset waiting already.',
    action: 'Wait for its decision.',
  },
  request_decided: {
    status: 409,
    meaning: 'The access request has been decided already.',
    action: 'List the access requests again to see its decision.',
  },
  review_decided: {
    status: 409,
    meaning: 'The result or export is not waiting for review any more.',
    action: 'Reload it to see its review.',
  },
  held_for_review: {
    status: 409,
    meaning: "The dataset's airlock holds the result until an administrator approves it.",
    action: 'Look again later; nothing of it is shown before then.',
  },
  result_not_ready: {
    status: 409,
    meaning: 'The query has no result (yet): it is queued, running, failed or cancelled.',
    action: 'Wait until its status is succeeded; run it again if it failed.',
  },
  query_stopped: {
    status: 409,
    meaning: 'The query was stopped (cancelled, or past its time limit) while it ran.',
    action: 'Run it again, narrower if it ran out of time.',
  },
  upload_incomplete: {
    status: 409,
    meaning: 'Parts of the upload are missing or of the wrong length.',
    action: 'Send the parts the message lists, then complete again.',
  },
  upload_closed: {
    status: 409,
    meaning: 'The upload was completed or cancelled already.',
    action: 'Start a new upload.',
  },
  upload_part_elsewhere: {
    status: 409,
    meaning: "This upload's parts go straight to the object store, not to medlake.",
    action: 'Send each part to the URL its target names.',
  },
  no_release: {
    status: 409,
    meaning: 'The upload published no release, so there is nothing to preview.',
    action: "Read the upload's report for why.",
  },
  last_admin: {
    status: 409,
    meaning: 'The change would leave no active administrator.',
    action: 'Make another user an administrator first.',
  },
  mfa_already_set: {
    status: 409,
    meaning: 'An authenticator app is set up already.',
    action: 'Ask an administrator to reset it.',
  },
  mfa_setup_not_started: {
    status: 409,
    meaning: 'The authenticator setup has not been started.',
    action: 'Start the setup first.',
  },
  lease_lost: {
    status: 409,
    meaning:
      'The ingest stalled past its lease and another server failed it; nothing was published.',
    action: 'Send the upload again.',
  },
  home_in_use: {
    status: 409,
    meaning: 'MEDLAKE_HOME is in use by another medlake process (CLI).',
    action: 'Stop that process, or point the command at another MEDLAKE_HOME.',
  },
  backup_refused: {
    status: 409,
    meaning:
      'The backup or restore cannot go where it was asked (not empty, or not this deployment).',
    action: 'Do as the message says: an empty folder or home, or the tool it names.',
  },
  payload_too_large: {
    status: 413,
    meaning: 'The request body is larger than the server accepts.',
    action: 'Send large files as an upload in parts.',
  },
  unsupported_media_type: {
    status: 415,
    meaning: 'The request body has a content type the route does not read.',
    action: 'Send JSON (or the type the route documents).',
  },
  rate_limited: {
    status: 429,
    meaning: 'Too many requests from your address or with your token in a minute.',
    action: 'Wait for the Retry-After header, then send again.',
  },
  sign_in_throttled: {
    status: 429,
    meaning: 'Too many failed sign-ins from your address.',
    action: 'Wait the minutes the message names, then sign in again.',
  },
  account_locked: {
    status: 429,
    meaning: 'The account is locked after too many failed sign-ins.',
    action: 'Wait the time the message names, or ask an administrator.',
  },
  queue_full: {
    status: 429,
    meaning: 'You have as many queries queued or running as one user may.',
    action: 'Wait for one to finish, or cancel one, then submit again.',
  },
  budget_spent: {
    status: 429,
    meaning: 'The privacy budget on the dataset for the current window is spent.',
    action: 'Wait until the date the message gives, or ask a question answered before (free).',
  },
  lifetime_budget_spent: {
    status: 429,
    meaning: 'The lifetime privacy budget on the dataset is spent; it does not renew.',
    action: 'Ask only questions answered before (free), or ask the dataset administrators.',
  },
  internal: {
    status: 500,
    meaning: 'Something went wrong on the server; the log holds the details.',
    action: 'Report it with the request id the message quotes.',
  },
  engine_failed: {
    status: 500,
    meaning: 'The query engine could not run a statement.',
    action: 'Report it to the administrator, who finds the details in the log.',
  },
  lake_file_missing: {
    status: 500,
    meaning: 'A file the catalog lists is missing from the lake; nothing was answered short.',
    action: "Report it to the administrator, who restores the lake's files from a backup.",
  },
  overloaded: {
    status: 503,
    meaning: 'The server is overloaded and sheds requests.',
    action: 'Wait for the Retry-After header, then send again.',
  },
  ledger_busy: {
    status: 503,
    meaning: 'Another of your results is being checked against what you were released before.',
    action: 'Try again in a minute.',
  },
  catalog_unavailable: {
    status: 503,
    meaning: 'The catalog database cannot be reached.',
    action: 'Try again later; the administrator is told by the health check.',
  },
  store_unavailable: {
    status: 503,
    meaning: 'The object store cannot be reached.',
    action: 'Try again later; the administrator is told by the health check.',
  },
  engine_unavailable: {
    status: 503,
    meaning: 'The query engine cannot be reached, or lost the session.',
    action: 'Try again later.',
  },
  vault_unavailable: {
    status: 503,
    meaning: 'The pseudonym vault or its key cannot be reached or read.',
    action: 'Try again later; the administrator must check the vault.',
  },
  sso_unavailable: {
    status: 503,
    meaning: 'The single sign-on provider cannot be reached.',
    action: 'Try again later, or sign in with your password.',
  },
  disk_full: {
    status: 503,
    meaning: "The server's disk is full.",
    action: 'An administrator must free space; then try again.',
  },
  out_of_memory: {
    status: 503,
    meaning: 'The ingest ran out of memory within its limit.',
    action: 'An administrator raises MEDLAKE_INGEST_MEMORY; then upload again.',
  },
} as const satisfies Record<string, ErrorCodeEntry>;

export type ErrorCode = keyof typeof errorCatalog;

export const errorCodeList = Object.keys(errorCatalog) as [ErrorCode, ...ErrorCode[]];

export const errorCodeSchema = z.enum(errorCodeList);

/** The HTTP status of each error code. */
export function statusOf(code: ErrorCode): number {
  return errorCatalog[code].status;
}

/** Whether a string is one of the API's error codes (an answer of another version may not be). */
export function isErrorCode(code: string): code is ErrorCode {
  return Object.hasOwn(errorCatalog, code);
}

/** The body of every non-2xx API response. */
export const errorBodySchema = z.object({
  error: z.object({
    code: errorCodeSchema,
    message: z.string(),
    /** Where the problem is, for input errors: a field path, or file/line/column. */
    details: z.array(z.object({ path: z.string(), message: z.string() })).optional(),
  }),
});

export type ErrorBody = z.infer<typeof errorBodySchema>;

/** The table of error codes as Markdown: docs/errors.md holds it, and a test keeps it equal. */
export function errorCodeTable(): string {
  const rows = Object.entries(errorCatalog).map(
    ([code, entry]) => `| \`${code}\` | ${entry.status} | ${entry.meaning} | ${entry.action} |`,
  );
  return [
    '| code | status | meaning | what the client can do |',
    '| --- | --- | --- | --- |',
    ...rows,
  ].join('\n');
}
