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
}

export interface ReleasesTable {
  id: string;
  dataset_id: string;
  hospital_id: string;
  month: string;
  job_id: string;
  contract_version: number;
  content_sha256: string;
  source_bytes: BigIntColumn;
  row_count: BigIntColumn;
  rejected_row_count: BigIntColumn;
  files: Json<string[]>;
  quality: Json<unknown>;
  published_at: Generated<Date>;
}

export interface CurrentReleasesTable {
  dataset_id: string;
  hospital_id: string;
  month: string;
  release_id: string;
}

/** The catalog's tables as Kysely sees them. Each migration that adds a table adds it here. */
export interface CatalogSchema {
  meta: MetaTable;
  hospitals: HospitalsTable;
  datasets: DatasetsTable;
  header_mappings: HeaderMappingsTable;
  jobs: JobsTable;
  releases: ReleasesTable;
  current_releases: CurrentReleasesTable;
}
