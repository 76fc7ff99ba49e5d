import { createHash, randomUUID } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdir, rm } from 'node:fs/promises';
import path from 'node:path';
import { pipeline, Transform, type Readable } from 'node:stream';
import type { IngestProblem, QualityReport } from '@medlake/shared';
import type { Actor } from '../audit/audit-log.ts';
import { datasetsRepository } from '../catalog/datasets-repository.ts';
import { hospitalsRepository } from '../catalog/hospitals-repository.ts';
import { jobsRepository } from '../catalog/jobs-repository.ts';
import { releasesRepository } from '../catalog/releases-repository.ts';
import { createIngestEngine } from '../engines/registry.ts';
import { releaseFolder } from '../ingest/lake-keys.ts';
import type { IngestProgress } from '../ingest/ingest-types.ts';
import { bytesOf } from '../env.ts';
import { AppError, diskFullError, notFound } from '../errors.ts';
import { compareQuality } from '../ingest/compare-quality.ts';
import { keepUploadProblems, maxStoredProblems } from '../ingest/kept-problems.ts';
import { readHeader, resolveHeader, type IngestPlan } from '../ingest/ingest-plan.ts';
import { loadRestrictedZip3 } from '../ingest/restricted-zip3.ts';
import type { Platform } from '../platform.ts';
import { folderLocation } from '../storage/object-store.ts';
import { openConfiguredVaultClient } from '../vault/configured-vault.ts';
import { keepIngestLease } from './ingest-lease.ts';
import { countFiguresAtPublish, storeScopeFigures } from './queries/dictionary-figures.ts';

export const ingestJobKind = 'ingest';

export type IngestInput = {
  /** Who uploads, for the audit log: the steward's account, or the operator at the CLI. */
  actor: Actor;
  datasetId: string;
  hospitalId: string;
  /** YYYY-MM */
  month: string;
  /** The uploaded file's name, for messages; never used as a path. */
  fileName: string;
  /**
   * A request body as it arrives, a file already on this machine (the CLI), or an object
   * already in the store (an upload in parts), which is moved into place without its bytes
   * passing through the server.
   */
  source: { stream: Readable } | { file: string } | { object: string };
  onProgress?: (progress: IngestJobProgress) => void;
};

export type IngestJobProgress =
  { phase: 'landing'; bytes: number } | (IngestProgress & { bytes: number });

export type IngestResult =
  | {
      status: 'published';
      jobId: string;
      releaseId: string;
      rows: number;
      rejectedRows: number;
      quality: QualityReport;
    }
  | { status: 'unchanged'; jobId: string; releaseId: string }
  | {
      status: 'rejected';
      jobId: string;
      fileName: string;
      problems: IngestProblem[];
      problemCount: number;
      rejectedRows: number;
    };

type IngestJobParams = {
  datasetId: string;
  hospitalId: string;
  month: string;
  fileName: string;
  /** Decided up front, so that an interrupted job's files can be found and removed. */
  releaseId: string;
};

const monthPattern = /^\d{4}-(0[1-9]|1[0-2])$/;

/**
 * Turns one monthly upload into a published release: land the raw file, validate it against
 * the dataset's contract, de-identify it into Parquet, and publish it in one catalog
 * transaction. Nothing is visible to queries until that transaction commits; on any failure
 * the previous release stays current and every file the attempt made is removed. Every
 * attempt is audited with its outcome; a publication also in the transaction that makes it.
 */
export async function ingestUpload(platform: Platform, input: IngestInput): Promise<IngestResult> {
  const target = `dataset:${input.datasetId}`;
  const where = { dataset: input.datasetId, hospital: input.hospitalId, month: input.month };
  try {
    const result = await ingestAndPublish(platform, input);
    await platform.audit.record({
      action: 'upload',
      actor: input.actor,
      target,
      outcome: result.status === 'rejected' ? 'failure' : 'success',
      details: {
        ...where,
        status: result.status,
        job: result.jobId,
        ...(result.status === 'rejected' ? { problems: result.problemCount } : {}),
      },
    });
    return result;
  } catch (error) {
    await platform.audit
      .record({
        action: 'upload',
        actor: input.actor,
        target,
        outcome: 'failure',
        details: {
          ...where,
          status: 'failed',
          reason: error instanceof AppError ? error.message : 'unexpected error',
        },
      })
      .catch(() => undefined);
    throw error;
  }
}

async function ingestAndPublish(platform: Platform, input: IngestInput): Promise<IngestResult> {
  if (!monthPattern.test(input.month)) {
    throw new AppError('invalid_input', `month must be YYYY-MM, for example 2024-01`);
  }
  const datasets = datasetsRepository(platform.catalog.db);
  const dataset = await datasets.get(input.datasetId);
  if (!dataset) throw notFound('dataset_not_found', `Dataset ${input.datasetId}`);
  if (!(await hospitalsRepository(platform.catalog.db).get(input.hospitalId))) {
    throw notFound('hospital_not_found', `Hospital ${input.hospitalId}`);
  }

  const jobs = jobsRepository(platform.catalog.db);
  const jobId = randomUUID();
  const params: IngestJobParams = {
    datasetId: dataset.id,
    hospitalId: input.hospitalId,
    month: input.month,
    fileName: plainFileName(input.fileName),
    releaseId: randomUUID(),
  };
  await jobs.start({
    id: jobId,
    kind: ingestJobKind,
    params,
    userId: input.actor.userId,
    hospitalId: input.hospitalId,
  });
  // Other servers on the same catalog leave this ingest alone while it beats.
  const lease = keepIngestLease(jobs, jobId);
  const files = ingestFiles(platform, jobId, params);
  const reportProgress = throttledProgress(input.onProgress, (progress) =>
    jobs.reportProgress(jobId, progress),
  );

  let releaseFolderRemoved = true;
  try {
    const landed = await land(platform, files.landingKey, input.source, (bytes) =>
      reportProgress({ phase: 'landing', bytes }),
    );
    const releases = releasesRepository(platform.catalog.db);
    const current = await releases.current(dataset.id, input.hospitalId, input.month);
    if (
      current &&
      current.contentId === landed.contentId &&
      current.contractVersion === dataset.contractVersion
    ) {
      await jobs.finish(jobId, {
        status: 'succeeded',
        result: { status: 'unchanged', releaseId: current.id },
      });
      return { status: 'unchanged', jobId, releaseId: current.id };
    }

    const source = platform.store.locate(files.landingKey);
    const openSource = () => platform.store.get(files.landingKey);
    const header = await readHeader(await openSource(), dataset.contract.delimiter);
    const resolved =
      'fields' in header
        ? resolveHeader(
            header.fields,
            dataset.contract,
            await datasets.headerMapping(dataset.id, input.hospitalId),
          )
        : { source: [], problems: header.problems };
    if (resolved.problems.length > 0) {
      return await reject(platform, jobId, params, {
        problems: resolved.problems,
        problemCount: resolved.problems.length,
        rejectedRows: 0,
      });
    }

    const plan: IngestPlan = {
      contract: dataset.contract,
      hospitalId: input.hospitalId,
      month: input.month,
      fileName: params.fileName,
      source: resolved.source,
      restrictedZip3: loadRestrictedZip3().prefixes,
    };
    await mkdir(files.workDirectory, { recursive: true });
    const vault = await openConfiguredVaultClient(platform.env);
    let outcome;
    try {
      const idSpace =
        dataset.contract.patientIdSpace === 'shared' ? 'shared' : `hospital:${input.hospitalId}`;
      const engine = createIngestEngine(platform.env, {
        allowedDirectories: [
          folderLocation(platform.store, 'landing'),
          // The folder that will hold the release's: DuckDB allows a directory's contents, and
          // the release's folder is one that the engine makes.
          folderLocation(platform.store, path.posix.dirname(files.lakeFolder)),
          files.workDirectory,
        ],
        tempDirectory: path.join(files.workDirectory, 'spill'),
        memoryLimit: platform.env.MEDLAKE_INGEST_MEMORY,
        ...(platform.store.engineAccess ? { s3: platform.store.engineAccess } : {}),
      });
      outcome = await engine.ingest({
        plan,
        source,
        sourceBytes: landed.bytes,
        ...(landed.estimatedRows === undefined ? {} : { estimatedRows: landed.estimatedRows }),
        openSource,
        target: { store: platform.store, folder: files.lakeFolder },
        fileBytes: bytesOf(platform.env.MEDLAKE_PARQUET_FILE_SIZE),
        idSpace,
        linkageKey: await vault.linkageKey(),
        pseudonymizePatients: (ids) => vault.pseudonymize({ space: idSpace, kind: 'patient' }, ids),
        // All of them for the upload's CSV; the catalog keeps the first few.
        maxReportedProblems: maxStoredProblems,
        onProgress: (progress) => reportProgress({ ...progress, bytes: landed.bytes }),
      });
    } finally {
      await vault.close();
    }
    if (outcome.status === 'rejected') {
      const problems = await keepUploadProblems(platform, jobId, outcome.problems);
      return await reject(platform, jobId, params, { ...outcome, problems });
    }

    const previous = await releases.previousMonth(dataset.id, input.hospitalId, input.month);
    const { maxRowsPerPatient, ...measured } = outcome.profile;
    const profile = {
      ...measured,
      rejectedSamples: await keepUploadProblems(platform, jobId, measured.rejectedSamples),
    };
    const quality: QualityReport = {
      ...profile,
      comparedWith: previous ? { releaseId: previous.id, month: previous.month } : null,
      changes: previous
        ? compareQuality(profile, {
            rows: previous.rowCount,
            codes: previous.quality.codes,
          })
        : [],
    };
    const lakeKeys = outcome.files.map((name) => `${files.lakeFolder}/${name}`);
    const result = {
      status: 'published' as const,
      jobId,
      releaseId: params.releaseId,
      rows: quality.rows,
      rejectedRows: quality.rejectedRows,
      quality,
    };
    // The data dictionary's counts, with this release in place: stored as it is published.
    const dictionary = await countFiguresAtPublish(platform, dataset, {
      id: params.releaseId,
      hospitalId: input.hospitalId,
      month: input.month,
      folder: files.lakeFolder,
      fileCount: outcome.files.length,
      pairsInPlace: outcome.pairsWritten,
    });
    await releases.publish(
      {
        id: params.releaseId,
        datasetId: dataset.id,
        hospitalId: input.hospitalId,
        month: input.month,
        jobId,
        contractVersion: dataset.contractVersion,
        contentId: landed.contentId,
        sourceBytes: landed.bytes,
        ...(landed.estimatedRows === undefined ? {} : { estimatedRows: landed.estimatedRows }),
        rowCount: quality.rows,
        rejectedRowCount: quality.rejectedRows,
        maxRowsPerPatient,
        files: lakeKeys,
        fileStats: outcome.fileStats,
        quality,
      },
      async (trx) => {
        const ended = await jobsRepository(trx).finish(jobId, {
          status: 'succeeded',
          result: { status: 'published', releaseId: params.releaseId, rows: quality.rows },
        });
        // In the publishing transaction: an ingest another server already failed (its lease
        // expired while this one was stalled) publishes nothing, since its files are going.
        if (!ended) {
          throw new AppError(
            'lease_lost',
            'This ingest lost its lease (no heartbeat for too long) and was failed; nothing was published. Send the upload again.',
          );
        }
        if (dictionary) await storeScopeFigures(trx, dataset.id, dictionary);
        await platform.audit.record(
          {
            action: 'release.publish',
            actor: input.actor,
            target: `release:${params.releaseId}`,
            details: {
              dataset: dataset.id,
              hospital: input.hospitalId,
              month: input.month,
              rows: quality.rows,
              replaces: current?.id ?? null,
            },
          },
          trx,
        );
      },
    );
    return result;
  } catch (caught) {
    const error =
      diskFullError(caught, 'the upload could not be written, and nothing of it was published') ??
      caught;
    // Whatever the engine wrote of the release, whole files or not.
    releaseFolderRemoved = await succeeds(platform.store.deleteFolder(files.lakeFolder));
    await jobs
      .finish(jobId, {
        status: 'failed',
        error: { message: error instanceof AppError ? error.message : 'unexpected error' },
      })
      .catch(() => undefined);
    throw error;
  } finally {
    lease.stop();
    const scratchRemoved = await succeeds(removeScratch(platform, files));
    if (!releaseFolderRemoved || !scratchRemoved) {
      await jobs.setLeftovers(jobId, true).catch(() => undefined);
    }
  }
}

/** Whether the cleanup step went through; a failed one is left to the next start. */
async function succeeds(step: Promise<unknown>): Promise<boolean> {
  return step.then(
    () => true,
    () => false,
  );
}

/**
 * The name of an uploaded file as the steward's computer had it, without any folder, whichever
 * separator the client used: it is shown back and never used as a path.
 */
export function plainFileName(name: string): string {
  return name.split(/[\\/]/).pop() || 'upload.csv';
}

/** Every place an ingest job writes to, from its ids alone, so that cleanup can find them. */
export function ingestFiles(platform: Platform, jobId: string, params: IngestJobParams) {
  return {
    // In the landing zone's own folder, which only the ingest engine may read.
    landingKey: `landing/${jobId}.csv`,
    lakeFolder: releaseFolder(params),
    workDirectory: path.join(platform.layout.work, jobId),
  };
}

async function removeScratch(platform: Platform, files: ReturnType<typeof ingestFiles>) {
  await rm(files.workDirectory, { recursive: true, force: true });
  if (platform.env.MEDLAKE_LANDING_RETENTION === 'delete') {
    await platform.store.delete(files.landingKey);
  }
}

async function reject(
  platform: Platform,
  jobId: string,
  params: IngestJobParams,
  outcome: { problems: IngestProblem[]; problemCount: number; rejectedRows: number },
): Promise<IngestResult> {
  await jobsRepository(platform.catalog.db).finish(jobId, {
    status: 'failed',
    error: { message: 'the file did not pass validation', ...outcome },
  });
  return { status: 'rejected', jobId, fileName: params.fileName, ...outcome };
}

/**
 * Puts the upload into the landing zone, hashing and counting it. A stream is hashed on its
 * way through; a local file is copied by the kernel while it is hashed beside the copy.
 */
async function land(
  platform: Platform,
  key: string,
  source: IngestInput['source'],
  onBytes: (bytes: number) => void,
): Promise<{ contentId: string; bytes: number; estimatedRows?: number }> {
  if ('object' in source) {
    // Its tag is taken before the move, which on S3 is a copy with a tag of its own.
    const contentId = await platform.store.contentTag(source.object);
    const bytes = await platform.store.size(source.object);
    await platform.store.move(source.object, key);
    onBytes(bytes);
    return { contentId, bytes };
  }
  const hash = createHash('sha256');
  let bytes = 0;
  // Line breaks are counted in the first megabytes only: counting them all would cost as much
  // as the hash. Reading's progress needs only an estimate of the rows until they are counted.
  const sample = { bytes: 0, lines: 0 };
  const count = (chunk: Buffer) => {
    hash.update(chunk);
    bytes += chunk.length;
    if (sample.bytes < rowSampleBytes) {
      const part = chunk.subarray(0, rowSampleBytes - sample.bytes);
      sample.bytes += part.length;
      sample.lines += countLineBreaks(part);
    }
    onBytes(bytes);
  };
  if ('file' in source) {
    const hashing = (async () => {
      for await (const chunk of createReadStream(source.file, { highWaterMark: 4 << 20 })) {
        count(chunk as Buffer);
      }
    })();
    await Promise.all([platform.store.putFile(key, source.file), hashing]);
  } else {
    const meter = new Transform({
      transform(chunk: Buffer, _encoding, done) {
        count(chunk);
        done(null, chunk);
      },
    });
    // pipeline, not pipe: a request that breaks off mid-upload must fail the landing, not
    // leave it waiting for bytes that never come.
    pipeline(source.stream, meter, () => undefined);
    await platform.store.put(key, meter);
  }
  // The header line is not a row.
  const estimatedRows =
    sample.lines > 0 ? Math.max(0, Math.round((bytes * sample.lines) / sample.bytes) - 1) : 0;
  return { contentId: hash.digest('hex'), bytes, estimatedRows };
}

const rowSampleBytes = 8 << 20;

/** The line feeds in a piece of the upload. */
function countLineBreaks(chunk: Buffer): number {
  let lines = 0;
  for (let at = chunk.indexOf(10); at !== -1; at = chunk.indexOf(10, at + 1)) lines += 1;
  return lines;
}

/**
 * Calls back at most twice a second, and always at a phase's start and end (its counted
 * figures); the job record in the catalog gets the same figures.
 */
function throttledProgress(
  callback: ((progress: IngestJobProgress) => void) | undefined,
  persist: (progress: IngestJobProgress) => Promise<void>,
): (progress: IngestJobProgress) => void {
  let last = 0;
  let lastPhase = '';
  return (progress) => {
    const now = Date.now();
    const final = 'percent' in progress && progress.percent === 100;
    if (progress.phase === lastPhase && now - last < 500 && !final) return;
    last = now;
    lastPhase = progress.phase;
    callback?.(progress);
    void persist(progress).catch(() => undefined);
  };
}
