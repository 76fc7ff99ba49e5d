import type { ColumnType, Generated } from 'kysely';

/** A JSON column: read as the stored value, written as a JSON string. */
type Json<T> = ColumnType<T, string, string>;
type CreatedAt = ColumnType<Date, never, never>;
/** Postgres returns bigint as a string; we write numbers. */
type BigIntColumn = ColumnType<string, number, number>;

/** Installation-wide facts: the installation id, the demo-data marker and the like. */
export interface MetaTable {
  key: string;
  value: Json<unknown>;
  updated_at: Generated<Date>;
}

export interface HospitalsTable {
  id: string;
  name: string;
  created_at: CreatedAt;
}

export interface DatasetsTable {
  id: string;
  title: string;
  description: string;
  contract: Json<unknown>;
  contract_version: Generated<number>;
  created_at: CreatedAt;
  updated_at: Generated<Date>;
}

export interface HeaderMappingsTable {
  dataset_id: string;
  hospital_id: string;
  mapping: Json<Record<string, string>>;
  updated_at: Generated<Date>;
}

export type JobStatus = 'running' | 'succeeded' | 'failed';

export interface JobsTable {
  id: string;
  kind: string;
  status: JobStatus;
  params: Json<unknown>;
  progress: Json<unknown> | null;
  result: Json<unknown> | null;
  error: Json<unknown> | null;
  started_at: Generated<Date>;
  finished_at: Date | null;
  user_id: string | null;
  hospital_id: string | null;
  /** What the job wrote could not all be removed when it ended; the next start removes it. */
  leftovers: Generated<boolean>;
  /** When the server running the job last said it is alive (ingest leases); null once ended. */
  heartbeat_at: Date | null;
}

export interface ReleasedCellsTable {
  id: Generated<string>;
  holder: string;
  dataset_id: string;
  family: string;
  query_id: string;
  cell: Json<unknown>;
  patients: BigIntColumn;
  released_at: CreatedAt;
  /** Who asked for the result (null: recorded before 2026-12-07 for a query since removed). */
  user_id: string | null;
}

/**
 * The holders each user has been with, for the release ledger: every holder they had a result
 * released to, and every project they joined (kept when they leave).
 */
export interface LedgerHoldersTable {
  user_id: string;
  holder: string;
  since: CreatedAt;
}

export interface PrivacySpendingTable {
  id: Generated<string>;
  holder: string;
  dataset_id: string;
  answer_key: string;
  query_id: string;
  epsilon_micro: BigIntColumn;
  spent_at: CreatedAt;
}

export interface StewardHospitalsTable {
  user_id: string;
  hospital_id: string;
  created_at: CreatedAt;
}

export interface ReleasesTable {
  id: string;
  dataset_id: string;
  hospital_id: string;
  month: string;
  job_id: string;
  contract_version: number;
  content_id: string;
  source_bytes: BigIntColumn;
  row_count: BigIntColumn;
  rejected_row_count: BigIntColumn;
  files: Json<string[]>;
  quality: Json<unknown>;
  published_at: Generated<Date>;
  max_rows_per_patient: number | null;
}

/** What one Parquet file of a release holds, for the planner to skip files (release-files-repository.ts). */
export interface ReleaseFilesTable {
  release_id: string;
  file: string;
  row_count: BigIntColumn;
  codes: Json<string[]> | null;
  first_event: string | null;
  last_event: string | null;
}

export interface CurrentReleasesTable {
  dataset_id: string;
  hospital_id: string;
  month: string;
  release_id: string;
}

/** Per dataset and scope (a hospital, or '*'): which releases its dictionary figures count. */
export interface DictionaryScopesTable {
  dataset_id: string;
  scope: string;
  basis: string;
  computed_at: Generated<Date>;
}

/** Rows, label and unit of a code at one hospital, as of its scope's basis. */
export interface DictionaryCodeRowsTable {
  dataset_id: string;
  scope: string;
  hospital_id: string;
  code: string | null;
  row_count: BigIntColumn;
  label: string | null;
  unit: string | null;
}

/** Distinct patients of a code (or of all codes) per set of hospitals they have it at. */
export interface DictionaryCodePatientsTable {
  dataset_id: string;
  scope: string;
  all_codes: boolean;
  code: string | null;
  hospitals: string[];
  patients: BigIntColumn;
}

/** A release whose dictionary pairs are written beside its files, and under which contract. */
export interface DictionaryReleasePairsTable {
  release_id: string;
  contract_version: number;
  written_at: Generated<Date>;
}

export type UserRole = 'admin' | 'steward' | 'researcher' | 'auditor' | 'custodian';

export interface UsersTable {
  id: string;
  email: string;
  name: string;
  role: UserRole;
  created_at: CreatedAt;
  disabled_at: Date | null;
  password_hash: string | null;
  password_changed_at: Date | null;
  must_change_password: Generated<boolean>;
  failed_logins: Generated<number>;
  locked_until: Date | null;
  totp_secret: string | null;
  totp_enabled_at: Date | null;
  totp_last_step: BigIntColumn | null;
  last_login_at: Date | null;
  oidc_subject: string | null;
}

export interface OidcLoginsTable {
  state: string;
  nonce: string;
  code_verifier: string;
  return_to: string;
  created_at: CreatedAt;
}

export interface SessionsTable {
  id: string;
  user_id: string;
  token_sha256: string;
  csrf_token: string;
  method: 'password' | 'oidc';
  source: string;
  user_agent: string | null;
  created_at: CreatedAt;
  last_seen_at: Date;
  expires_at: Date;
  revoked_at: Date | null;
}

export interface ApiTokensTable {
  id: string;
  user_id: string;
  token_sha256: string;
  name: string;
  expires_at: Date;
  created_at: CreatedAt;
  last_used_at: Date | null;
  revoked_at: Date | null;
  scopes: ColumnType<string[], string | undefined, string>;
}

export interface DatasetGrantsTable {
  id: string;
  dataset_id: string;
  user_id: string | null;
  project_id: string | null;
  level: 'aggregate' | 'row';
  hospitals: Json<string[]> | null;
  expires_at: Date | null;
  created_at: CreatedAt;
  revoked_at: Date | null;
}

export interface ProjectsTable {
  id: string;
  name: string;
  description: Generated<string>;
  created_at: CreatedAt;
}

export interface ProjectMembersTable {
  project_id: string;
  user_id: string;
  created_at: CreatedAt;
}

export type AccessRequestStatus = 'pending' | 'approved' | 'rejected';

export interface AccessRequestsTable {
  id: string;
  user_id: string;
  dataset_id: string;
  purpose: string;
  level: 'aggregate' | 'row';
  terms_version: number;
  terms_accepted_at: Date;
  status: AccessRequestStatus;
  decided_by: string | null;
  decided_at: Date | null;
  decision_reason: string | null;
  grant_id: string | null;
  created_at: CreatedAt;
}

export interface SavedQueriesTable {
  id: string;
  user_id: string;
  project_id: string | null;
  dataset_id: string;
  name: string;
  description: Generated<string>;
  spec: Json<unknown>;
  created_at: CreatedAt;
}

export type UploadSessionStatus = 'open' | 'completed' | 'aborted';

export interface UploadSessionsTable {
  id: string;
  user_id: string;
  dataset_id: string;
  hospital_id: string;
  month: string;
  file_name: string;
  bytes: BigIntColumn;
  part_bytes: BigIntColumn;
  object_key: string;
  store_upload_id: string;
  status: UploadSessionStatus;
  job_id: string | null;
  created_at: CreatedAt;
}

/** A small aggregate result, stored with its query's success instead of as a Parquet file. */
export interface QueryResultsTable {
  query_id: string;
  rows: Json<Array<Record<string, unknown>>>;
}

export type QueryJobStatus = 'queued' | 'running' | 'succeeded' | 'failed' | 'cancelled';

export interface QueryJobsTable {
  id: string;
  user_id: string;
  dataset_id: string;
  status: QueryJobStatus;
  spec: Json<unknown>;
  spec_sha256: string;
  access_level: 'aggregate' | 'row';
  engine: string;
  release_ids: Json<string[]> | null;
  progress: Json<unknown> | null;
  summary: Json<unknown> | null;
  result_key: string | null;
  error: Json<unknown> | null;
  cancel_requested: Generated<boolean>;
  attempts: Generated<number>;
  worker_id: string | null;
  heartbeat_at: Date | null;
  created_at: CreatedAt;
  started_at: Date | null;
  finished_at: Date | null;
  /** The airlock's review of the result (null: made without an airlock). */
  review: ResultReviewState | null;
  review_report: Json<unknown> | null;
  reviewed_by: string | null;
  reviewed_at: Date | null;
  review_reason: string | null;
}

export type ResultReviewState = 'not_needed' | 'pending' | 'approved' | 'rejected';

export interface QueryExportsTable {
  id: string;
  query_id: string;
  user_id: string;
  format: 'csv' | 'parquet';
  object_key: string;
  file_name: string;
  bytes: BigIntColumn;
  created_at: CreatedAt;
  report: ColumnType<unknown, string | undefined, string>;
  review: ColumnType<ExportReview, ExportReview | undefined, ExportReview>;
  reviewed_by: string | null;
  reviewed_at: Date | null;
  review_reason: string | null;
}

export type ExportReview = 'not_needed' | 'pending' | 'approved' | 'rejected';

export type AuditOutcome = 'success' | 'failure' | 'denied';

export interface AuditLogTable {
  seq: BigIntColumn;
  at: Date;
  actor_id: string | null;
  actor: string | null;
  action: string;
  target: string | null;
  outcome: AuditOutcome;
  source: string;
  details: Json<Record<string, unknown>>;
  prev_hash: string;
  hash: string;
}

/** The catalog's tables as Kysely sees them. Each migration that adds a table adds it here. */
export interface CatalogSchema {
  meta: MetaTable;
  hospitals: HospitalsTable;
  datasets: DatasetsTable;
  header_mappings: HeaderMappingsTable;
  jobs: JobsTable;
  releases: ReleasesTable;
  release_files: ReleaseFilesTable;
  current_releases: CurrentReleasesTable;
  dictionary_scopes: DictionaryScopesTable;
  dictionary_code_rows: DictionaryCodeRowsTable;
  dictionary_code_patients: DictionaryCodePatientsTable;
  dictionary_release_pairs: DictionaryReleasePairsTable;
  users: UsersTable;
  api_tokens: ApiTokensTable;
  dataset_grants: DatasetGrantsTable;
  query_jobs: QueryJobsTable;
  query_results: QueryResultsTable;
  released_cells: ReleasedCellsTable;
  ledger_holders: LedgerHoldersTable;
  privacy_spending: PrivacySpendingTable;
  query_exports: QueryExportsTable;
  audit_log: AuditLogTable;
  sessions: SessionsTable;
  steward_hospitals: StewardHospitalsTable;
  oidc_logins: OidcLoginsTable;
  projects: ProjectsTable;
  project_members: ProjectMembersTable;
  access_requests: AccessRequestsTable;
  saved_queries: SavedQueriesTable;
  upload_sessions: UploadSessionsTable;
}
