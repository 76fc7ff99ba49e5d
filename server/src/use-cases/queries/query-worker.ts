import type { OutputReport } from '@medlake/shared';
import { randomUUID } from 'node:crypto';
import { hostname } from 'node:os';
import { queryJobsRepository, type QueryJob } from '../../catalog/query-jobs-repository.ts';
import { AppError } from '../../errors.ts';
import type { Logger } from '../../logger.ts';
import type { Platform } from '../../platform.ts';
import { announceQueryFinished } from '../../query/query-events.ts';
import { forgetResultRows } from '../../query/result-cache.ts';
import { runQueryJob, type QueryJobOutcome } from './run-query-job.ts';

export type QueryWorkerOptions = {
  logger: Logger;
  /** How often a running job tells the catalog it is alive, and checks for a cancel. */
  heartbeatMs?: number;
  /** A running job whose heartbeat is older than this is taken to have lost its worker. */
  staleAfterMs?: number;
  /** How often the queue is looked at when nobody wakes the worker. */
  pollMs?: number;
};

export type QueryWorker = {
  /** Resolves once the worker has first looked at the queue (and reaped, on PGlite). */
  ready: Promise<void>;
  /** Looks at the queue now (after a submit) instead of at the next poll. */
  wake(): void;
  /**
   * Holds one of the worker's places for a job a submit in this process is about to record as
   * started by it (`workerId`), or none when the worker is full, stopping or has queued jobs
   * to take first. The submit then hands the job to `run` while it records it.
   */
  reserve(): QueryRunSlot | undefined;
  /** Stops taking jobs, interrupts the running ones and waits for them to be recorded. */
  stop(): Promise<void>;
};

/** A place in a worker for one job, held between a submit's check and its record. */
export type QueryRunSlot = {
  workerId: string;
  /**
   * Starts the job as it is being recorded: the engine may run meanwhile, but nothing of its
   * answer goes further (privacy step, result, job's end) before `recorded` resolves (with
   * the job as recorded), and a record that fails stops the run.
   */
  run(job: QueryJob, recorded: Promise<QueryJob>): void;
};

/**
 * The worker each platform has in this process. A submit hands its job straight to it when it
 * has room, instead of queueing the job and waking the worker to claim it: a statement and a
 * trip through the event loop less before the engine starts.
 */
const localWorkers = new WeakMap<Platform, QueryWorker>();

/** A place in this process's worker for a job about to be submitted, if it has one free. */
export function reserveQueryRun(platform: Platform): QueryRunSlot | undefined {
  return localWorkers.get(platform)?.reserve();
}

/**
 * Why a run was stopped, and what becomes of its job: failed or cancelled by this worker, put
 * back in the queue, or `lost`: no longer this worker's (its lease ran out), so left as it is.
 */
class StopReason extends Error {
  readonly status: 'failed' | 'cancelled' | 'queued' | 'lost';
  constructor(status: StopReason['status'], message: string) {
    super(message);
    this.status = status;
  }
}

/**
 * Runs a claimed job to its end: a heartbeat while it runs (through which a cancel arrives),
 * the configured time limit, and exactly one final state. Used by the server's worker and by
 * `medlake query`, which runs its own job in the foreground.
 */
export async function executeQueryJob(
  platform: Platform,
  job: QueryJob,
  workerId: string,
  options: Pick<QueryWorkerOptions, 'logger' | 'heartbeatMs' | 'staleAfterMs'> & {
    shutdown?: AbortSignal;
    /** For a job started while its submit records it (QueryRunSlot.run). */
    recorded?: Promise<QueryJob>;
  },
): Promise<void> {
  const jobs = queryJobsRepository(platform.catalog.db);
  const controller = new AbortController();
  const stop = (status: StopReason['status'], message: string) => {
    if (!controller.signal.aborted) controller.abort(new StopReason(status, message));
  };
  const limit = platform.env.MEDLAKE_QUERY_TIMEOUT_SECONDS;
  const timer = setTimeout(
    () => stop('failed', `the query ran longer than its limit of ${limit} seconds and was stopped`),
    limit * 1000,
  );
  // A job started while its submit records it has no row before that record commits: a
  // heartbeat would find none and take the job for lost, and its end would be written to
  // nothing, leaving the row running once it commits. Both wait for the record.
  let recording = options.recorded !== undefined;
  /** The job as its submit recorded it, for a job started while it was recorded. */
  let recordedJob: QueryJob | undefined;
  const recordSettled = options.recorded?.then(
    (recorded) => {
      recording = false;
      recordedJob = recorded;
    },
    () => stop('failed', 'the query could not be recorded'),
  );
  // Whether a heartbeat went out: the catalog's copy of the job may then differ from ours.
  let beaten = false;
  // The engine's latest figure, sent with the next heartbeat rather than on every change.
  let percent: number | undefined;
  const heartbeat = setInterval(() => {
    if (recording) return;
    beaten = true;
    jobs
      .heartbeat(job.id, workerId, percent === undefined ? undefined : { percent })
      .then(({ cancel, lost }) => {
        if (lost) {
          stop(
            'lost',
            "this worker lost the query's lease (its heartbeat came too late): the job went back to the queue or was failed, and this run stopped",
          );
        } else if (cancel) stop('cancelled', 'cancelled by the user');
      })
      .catch(() => undefined);
  }, options.heartbeatMs ?? 2000);
  // A server that stops puts its running queries back in the queue: they start again on the
  // next worker (or after a restart) instead of failing.
  const onShutdown = () => stop('queued', 'the server stopped while the query ran');
  options.shutdown?.addEventListener('abort', onShutdown, { once: true });

  // The job as it ended, announced to waiting requests so that they need not read it again.
  let ended: QueryJob | undefined;
  try {
    const outcome = await runQueryJob(
      platform,
      job,
      { signal: controller.signal, onProgress: (value) => (percent = Math.round(value)) },
      options.recorded,
    );
    if (controller.signal.aborted) throw controller.signal.reason;
    const finishedAt = new Date();
    const ending = jobs.succeed(job.id, workerId, { ...outcome, finishedAt });
    // Where the end cannot fail to be recorded, the waiting request has its answer now rather
    // than after the catalog's statement (docs/ARCHITECTURE.md): the result has passed the
    // privacy step and the ledger, and the submit's audit entry was committed before them.
    const known = recordedJob ?? job;
    const certain =
      platform.catalog.kind === 'pglite' &&
      !beaten &&
      options.staleAfterMs !== undefined &&
      known.startedAt !== null &&
      finishedAt.getTime() - known.startedAt.getTime() < options.staleAfterMs / 2;
    if (certain) announceQueryFinished(job.id, succeededJob(known, outcome, finishedAt));
    ended = await ending;
    if (certain && ended?.status !== 'succeeded') {
      options.logger.error(
        { queryJob: job.id },
        'the end of a query job could not be recorded after its answer was given',
      );
    }
  } catch (error) {
    await recordSettled;
    const reason = controller.signal.reason as unknown;
    if (reason instanceof StopReason) {
      if (reason.status === 'queued') await jobs.requeue(job.id, workerId);
      else if (reason.status === 'lost') {
        // The job is another worker's now, or failed by the reaper with its own reason.
        options.logger.warn({ queryJob: job.id }, reason.message);
      } else ended = await jobs.fail(job.id, workerId, reason.status, { message: reason.message });
    } else if (error instanceof AppError) {
      // Which file is missing is for the administrator: the engine's message names it.
      if (error.code === 'lake_file_missing') {
        options.logger.error({ err: error.cause, queryJob: job.id }, error.message);
      }
      ended = await jobs.fail(job.id, workerId, 'failed', { message: error.message });
    } else {
      // Engine errors can quote the statement; the log keeps them, the user gets a plain line.
      options.logger.error({ err: error, queryJob: job.id }, 'query job failed');
      ended = await jobs.fail(job.id, workerId, 'failed', {
        message:
          'the query failed in the engine; the administrator can find the details in the log',
      });
    }
  } finally {
    clearTimeout(timer);
    clearInterval(heartbeat);
    options.shutdown?.removeEventListener('abort', onShutdown);
    // The run kept its rows in memory before the catalog said whether they are the job's: a
    // worker whose lease ran out meanwhile lost the job to another server, and a page served
    // from these rows would contradict the result that server stored.
    if (ended?.status !== 'succeeded') forgetResultRows(job.id);
    announceQueryFinished(job.id, ended);
  }
}

/**
 * The job as the catalog will hold it once `succeed` has recorded its outcome at `finishedAt`:
 * its figures as they read back from their JSON.
 */
function succeededJob(job: QueryJob, outcome: QueryJobOutcome, finishedAt: Date): QueryJob {
  return {
    ...job,
    status: 'succeeded',
    summary: JSON.parse(JSON.stringify(outcome.summary)) as unknown,
    resultKey: outcome.resultKey,
    releaseIds: [...outcome.releaseIds],
    finishedAt,
    review: outcome.review
      ? {
          state: outcome.review.state,
          report: JSON.parse(JSON.stringify(outcome.review.report)) as OutputReport,
          reviewedBy: null,
          reviewedAt: null,
          reason: null,
        }
      : null,
  };
}

/**
 * The server's query worker: takes queued jobs from the catalog, at most
 * MEDLAKE_QUERY_CONCURRENCY at a time, so that heavy queries wait in line instead of starving
 * the server. It also returns the jobs of workers that died to the queue.
 */
export function startQueryWorker(platform: Platform, options: QueryWorkerOptions): QueryWorker {
  const jobs = queryJobsRepository(platform.catalog.db);
  const workerId = `${hostname()}:${process.pid}:${randomUUID().slice(0, 8)}`;
  const staleAfterMs = options.staleAfterMs ?? 30_000;
  const shutdown = new AbortController();
  const running = new Set<Promise<void>>();
  let looking = false;
  /** A wake-up that came while the queue was being looked at: look once more after. */
  let lookAgain = false;
  let stopped = false;
  /** Places held for jobs that submits in this process are recording as started here. */
  let reserved = 0;
  /**
   * Whether the queue may hold jobs: until a look finds it empty, and again after a submit
   * queued one or the worker was too full to take what it found. Submits do not jump ahead of
   * queued jobs, and an embedded catalog (whose queue only this process fills) is not looked
   * at again after each run when it is known to be empty.
   */
  let mayHoldJobs = true;
  const hasRoom = () => running.size + reserved < platform.env.MEDLAKE_QUERY_CONCURRENCY;

  const start = (job: QueryJob, recorded?: Promise<QueryJob>) => {
    const run = executeQueryJob(platform, job, workerId, {
      ...options,
      staleAfterMs,
      shutdown: shutdown.signal,
      ...(recorded ? { recorded } : {}),
    })
      .catch((error: unknown) => options.logger.error({ err: error }, 'query worker error'))
      .finally(() => {
        running.delete(run);
        // After the waiting request has had its answer: the next claim is not its business.
        if (mayHoldJobs || platform.catalog.kind !== 'pglite') setImmediate(() => void fill());
      });
    running.add(run);
  };

  /**
   * Claims queued jobs while there is room: all of them (`drain`, on the poll and when a run
   * ends), or one per wake-up (a submit in this process queued one job; another claim right
   * away would find none, and would delay the claimed job's first catalog reads).
   */
  const fill = async (drain = true) => {
    if (stopped) return;
    if (looking) {
      lookAgain = true;
      return;
    }
    looking = true;
    try {
      let claimed = false;
      while (!stopped && hasRoom()) {
        if (claimed && !drain && !lookAgain) break;
        lookAgain = false;
        const job = await jobs.claim(workerId);
        if (!job && !lookAgain) {
          mayHoldJobs = false;
          break;
        }
        if (!job) continue;
        claimed = true;
        start(job);
      }
      // Full: what is still queued is taken when a run ends.
      if (!hasRoom()) mayHoldJobs = true;
    } catch (error) {
      options.logger.error({ err: error }, 'query worker could not read the queue');
    } finally {
      looking = false;
    }
  };

  const reap = async (staleBefore: Date) => {
    const count = await jobs.reapStale(staleBefore).catch(() => 0);
    if (count > 0) {
      mayHoldJobs = true;
      options.logger.warn({ count }, 'query jobs of a stopped worker were requeued or failed');
    }
  };

  // An embedded catalog belongs to this process alone, so any job still marked running was
  // left by a process that died: it is stale now, not after the usual wait.
  const startup = (platform.catalog.kind === 'pglite' ? reap(new Date()) : Promise.resolve()).then(
    () => fill(),
  );
  const poll = setInterval(() => void fill(), options.pollMs ?? 1000);
  const reaper = setInterval(
    () => void reap(new Date(Date.now() - staleAfterMs)),
    staleAfterMs / 2,
  );

  const worker: QueryWorker = {
    ready: startup,
    wake() {
      mayHoldJobs = true;
      void fill(false);
    },
    reserve() {
      if (stopped || mayHoldJobs || looking || !hasRoom()) return undefined;
      reserved += 1;
      return {
        workerId,
        run(job, recorded) {
          reserved -= 1;
          // A stop that came meanwhile: the job goes back to the queue, as a running one would.
          if (stopped) {
            void recorded.then(() => jobs.requeue(job.id, workerId)).catch(() => undefined);
          } else start(job, recorded);
        },
      };
    },
    async stop() {
      // Another worker started on the same platform since keeps its place.
      if (localWorkers.get(platform) === worker) localWorkers.delete(platform);
      stopped = true;
      clearInterval(poll);
      clearInterval(reaper);
      await startup;
      shutdown.abort();
      await Promise.allSettled([...running]);
    },
  };
  localWorkers.set(platform, worker);
  return worker;
}
