import type { Readable } from 'node:stream';
import type { IngestProblem, QualityReport } from '@medlake/shared';
import type { ReleaseFileStats } from '../catalog/release-files-repository.ts';
import type { EngineKind } from '../engines/types.ts';
import type { ObjectStore } from '../storage/object-store.ts';
import type { IngestPlan } from './ingest-plan.ts';

/**
 * The ingest side of an engine: turns one landed CSV into one de-identified Parquet file.
 * It runs in its own engine instance, which may read the landing zone; the query engine
 * never can.
 */
export interface IngestEngine {
  readonly kind: EngineKind;
  ingest(request: IngestRequest): Promise<IngestOutcome>;
}

export type IngestPhase = 'reading' | 'checking' | 'pseudonymizing' | 'writing' | 'profiling';

export type IngestProgress = {
  phase: IngestPhase;
  /** 0 to 100 within the phase, when the engine can tell. */
  percent: number | null;
  /**
   * How many rows (patients, while pseudonymizing) the phase has got through so far, when the
   * engine can tell; estimated from the share of the phase's work done while a statement runs.
   */
  rowsProcessed: number | null;
  /** Of how many, when known. */
  rowsTotal: number | null;
  /** rowsProcessed per second since the phase began. */
  rowsPerSecond: number | null;
  /** Whether the row figures are estimates (a statement still running) rather than counts. */
  estimated: boolean;
  /** What the row figures count. */
  counting: 'rows' | 'patients';
};

export type PseudonymLookup = (
  realIds: readonly string[],
) => Promise<Map<string, { pseudonym: string; shiftDays: number }>>;

export type IngestRequest = {
  plan: IngestPlan;
  /** The landed CSV, where the engine can read it: a path, or an S3 URL. */
  source: string;
  /** The landed CSV's size in bytes. */
  sourceBytes: number;
  /**
   * About how many rows it holds, from the lines in its first megabytes (unknown for an upload
   * in parts): what the progress of reading it is estimated from, until the rows are counted.
   */
  estimatedRows?: number;
  /** Reads the landed CSV from the medlake server, for the lines of the rows it reports. */
  openSource(): Promise<Readable>;
  /**
   * The folder of the store, not yet there, to write the release's Parquet files into, named
   * part-0.parquet, part-1.parquet, … It is the release's own folder in the lake, which no
   * query reads before the catalog publishes the release, and which is deleted on failure.
   */
  target: { store: ObjectStore; folder: string };
  /**
   * About how large one Parquet file may grow. A monthly upload smaller than this is one
   * file; a larger one is split, so that Spark and S3 read it in parallel, in parts of this
   * size rather than many small files.
   */
  fileBytes: number;
  /** Patient pseudonyms (and date shifts) from the vault, for the distinct ids of the upload. */
  pseudonymizePatients: PseudonymLookup;
  /**
   * Patient ids sent to the vault at once; 50,000 unless set. Tests set a few, so that a small
   * upload goes to the vault in several batches.
   */
  pseudonymBatch?: number;
  /**
   * A secret for linkage columns (an encounter id): they become a keyed hash, the same for the
   * same value and hospital, reversible by nobody who lacks the vault's key.
   */
  linkageKey: string;
  /** The vault's id space for this upload's patients and linkage columns. */
  idSpace: string;
  maxReportedProblems: number;
  onProgress?: (progress: IngestProgress) => void;
};

export type IngestOutcome =
  | {
      status: 'rejected';
      problems: IngestProblem[];
      problemCount: number;
      rejectedRows: number;
    }
  | {
      status: 'written';
      /** The names of the files written, in the target folder, in order. */
      files: string[];
      /** The report's figures, and the most rows one patient has (for the catalog only). */
      profile: Omit<QualityReport, 'comparedWith' | 'changes'> & { maxRowsPerPatient: number };
      /** What each file holds (its codes, event dates, rows), for the catalog's planner. */
      fileStats: ReleaseFileStats[];
      /** Whether the release's dictionary pairs file (release-pairs.ts) was written too. */
      pairsWritten: boolean;
    };
