import type { Migration } from 'kysely/migration';
import * as createMeta from './2026-11-26a-create-meta.ts';
import * as createDatasetsAndReleases from './2026-11-26b-create-datasets-and-releases.ts';
import * as createUsersGrantsAndQueries from './2026-11-26c-create-users-grants-and-queries.ts';
import * as createQueryExports from './2026-11-26d-create-query-exports.ts';
import * as createAuditLog from './2026-11-26e-create-audit-log.ts';
import * as createAccountsAndSessions from './2026-11-26f-create-accounts-and-sessions.ts';
import * as createStewardHospitals from './2026-11-26g-create-steward-hospitals.ts';
import * as createOidcLogins from './2026-11-26h-create-oidc-logins.ts';
import * as createProjectsAndAccessRequests from './2026-11-26i-create-projects-and-access-requests.ts';
import * as createSavedQueries from './2026-11-26j-create-saved-queries.ts';
import * as createUploadSessions from './2026-11-26k-create-upload-sessions.ts';
import * as renameReleaseContentId from './2026-11-26l-rename-release-content-id.ts';
import * as addJobLeftovers from './2026-11-26m-add-job-leftovers.ts';
import * as createReleasedCells from './2026-11-26n-create-released-cells.ts';
import * as createPrivacySpending from './2026-11-26o-create-privacy-spending.ts';
import * as addExportReview from './2026-11-26p-add-export-review.ts';
import * as oneGrantPerHolder from './2026-12-06a-one-grant-per-holder.ts';
import * as addReleaseRowsPerPatient from './2026-12-06b-add-release-rows-per-patient.ts';
import * as addResultReview from './2026-12-06c-add-result-review.ts';
import * as createReleaseFiles from './2026-12-06d-create-release-files.ts';
import * as addIngestJobLeases from './2026-12-06f-add-ingest-job-leases.ts';
import * as indexLedgerPoolAndWaitingQueries from './2026-12-06h-index-ledger-pool-and-waiting-queries.ts';
import * as createDictionaryFigures from './2026-12-06k-create-dictionary-figures.ts';
import * as indexReleaseFileCodes from './2026-12-06m-index-release-file-codes.ts';
import * as createDictionaryReleasePairs from './2026-12-06r-create-dictionary-release-pairs.ts';
import * as ledgerByUser from './2026-12-07a-ledger-by-user.ts';
import * as createQueryResults from './2026-12-07b-create-query-results.ts';

/**
 * Every catalog migration, oldest first, keyed by its dated file name. Listed by hand rather
 * than read from the folder so that the set is checked by the type checker and cannot change
 * with what happens to lie on disk.
 */
export const migrations: Record<string, Migration> = {
  '2026-11-26a-create-meta': createMeta,
  '2026-11-26b-create-datasets-and-releases': createDatasetsAndReleases,
  '2026-11-26c-create-users-grants-and-queries': createUsersGrantsAndQueries,
  '2026-11-26d-create-query-exports': createQueryExports,
  '2026-11-26e-create-audit-log': createAuditLog,
  '2026-11-26f-create-accounts-and-sessions': createAccountsAndSessions,
  '2026-11-26g-create-steward-hospitals': createStewardHospitals,
  '2026-11-26h-create-oidc-logins': createOidcLogins,
  '2026-11-26i-create-projects-and-access-requests': createProjectsAndAccessRequests,
  '2026-11-26j-create-saved-queries': createSavedQueries,
  '2026-11-26k-create-upload-sessions': createUploadSessions,
  '2026-11-26l-rename-release-content-id': renameReleaseContentId,
  '2026-11-26m-add-job-leftovers': addJobLeftovers,
  '2026-11-26n-create-released-cells': createReleasedCells,
  '2026-11-26o-create-privacy-spending': createPrivacySpending,
  '2026-11-26p-add-export-review': addExportReview,
  '2026-12-06a-one-grant-per-holder': oneGrantPerHolder,
  '2026-12-06b-add-release-rows-per-patient': addReleaseRowsPerPatient,
  '2026-12-06c-add-result-review': addResultReview,
  '2026-12-06d-create-release-files': createReleaseFiles,
  '2026-12-06f-add-ingest-job-leases': addIngestJobLeases,
  '2026-12-06h-index-ledger-pool-and-waiting-queries': indexLedgerPoolAndWaitingQueries,
  '2026-12-06k-create-dictionary-figures': createDictionaryFigures,
  '2026-12-06m-index-release-file-codes': indexReleaseFileCodes,
  '2026-12-06r-create-dictionary-release-pairs': createDictionaryReleasePairs,
  '2026-12-07a-ledger-by-user': ledgerByUser,
  '2026-12-07b-create-query-results': createQueryResults,
};
