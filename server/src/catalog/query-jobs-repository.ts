import { sql, type Selectable } from 'kysely';
import type { AccessLevel } from './grants-repository.ts';
import type { CatalogDb } from './catalog.ts';
import { paged } from './paged.ts';
import type { QueryJobStatus, QueryJobsTable, ResultReviewState } from './schema.ts';
import type { OutputReport } from '@medlake/shared';
import { reviewColumns, type ReviewDecision } from './review-decision.ts';

/** The airlock's review of a result: whether anyone may see it yet, and why. */
export type ResultReview = {
  state: ResultReviewState;
  /** The output checks of the result, as the reviewing admin sees them. */
  report: OutputReport;
  reviewedBy: string | null;
  reviewedAt: Date | null;
  reason: string | null;
};

export type QueryJob = {
  id: string;
  userId: string;
  datasetId: string;
  status: QueryJobStatus;
  spec: unknown;
  specSha256: string;
  accessLevel: AccessLevel;
  engine: string;
  releaseIds: string[] | null;
  progress: unknown;
  summary: unknown;
  resultKey: string | null;
  error: { message: string } | null;
  cancelRequested: boolean;
  attempts: number;
  createdAt: Date;
  startedAt: Date | null;
  finishedAt: Date | null;
  /** Null for a result made without an airlock. */
  review: ResultReview | null;
};

function toQueryJob(row: Selectable<QueryJobsTable>): QueryJob {
  return {
    id: row.id,
    userId: row.user_id,
    datasetId: row.dataset_id,
    status: row.status,
    spec: row.spec,
    specSha256: row.spec_sha256,
    accessLevel: row.access_level,
    engine: row.engine,
    releaseIds: row.release_ids,
    progress: row.progress,
    summary: row.summary,
    resultKey: row.result_key,
    error: row.error as { message: string } | null,
    cancelRequested: row.cancel_requested,
    attempts: row.attempts,
    createdAt: row.created_at,
    startedAt: row.started_at,
    finishedAt: row.finished_at,
    review:
      row.review === null
        ? null
        : {
            state: row.review,
            report: row.review_report as OutputReport,
            reviewedBy: row.reviewed_by,
            reviewedAt: row.reviewed_at,
            reason: row.review_reason,
          },
  };
}

/** A job as a submit records it. */
export type NewQueryJob = {
  id: string;
  userId: string;
  datasetId: string;
  spec: unknown;
  specSha256: string;
  accessLevel: AccessLevel;
  engine: string;
};

/** How many times a job is started before a worker's death makes it fail for good. */
export const maxQueryAttempts = 2;

/**
 * The queue of query jobs. Workers claim jobs with FOR UPDATE SKIP LOCKED, so several server
 * processes on one PostgreSQL share the queue without taking the same job twice.
 */
export function queryJobsRepository(db: CatalogDb) {
  /** An update of a job only while this worker runs it: a reaped or finished job is left be. */
  const updateOwned = (id: string, workerId: string) =>
    db
      .updateTable('query_jobs')
      .where('id', '=', id)
      .where('worker_id', '=', workerId)
      .where('status', '=', 'running');

  return {
    /** How many of the user's queries are queued or running. */
    async countWaiting(userId: string): Promise<number> {
      const { n } = await db
        .selectFrom('query_jobs')
        .select((eb) => eb.fn.countAll<string>().as('n'))
        .where('user_id', '=', userId)
        .where('status', 'in', ['queued', 'running'])
        .executeTakeFirstOrThrow();
      return Number(n);
    },

    async enqueue(job: NewQueryJob): Promise<QueryJob> {
      const row = await db
        .insertInto('query_jobs')
        .values({
          id: job.id,
          user_id: job.userId,
          dataset_id: job.datasetId,
          status: 'queued',
          spec: JSON.stringify(job.spec),
          spec_sha256: job.specSha256,
          access_level: job.accessLevel,
          engine: job.engine,
        })
        .returningAll()
        .executeTakeFirstOrThrow();
      return toQueryJob(row);
    },

    /**
     * Adds the job unless its user already has `waitingLimit` jobs queued or running, in one
     * statement (undefined when the user has too many). A job `startedBy` a worker is added as
     * that worker's running job, as a claim would leave it: a server that dies before it ends
     * leaves it stale, and the reaper puts it back in the queue like any claimed job.
     */
    async submit(
      job: NewQueryJob,
      options: { waitingLimit: number; startedBy?: string },
    ): Promise<QueryJob | undefined> {
      const now = new Date();
      const started = options.startedBy !== undefined;
      const row = await db
        .insertInto('query_jobs')
        .columns([
          'id',
          'user_id',
          'dataset_id',
          'status',
          'spec',
          'spec_sha256',
          'access_level',
          'engine',
          'worker_id',
          'started_at',
          'heartbeat_at',
          'attempts',
        ])
        .expression(
          db
            .selectNoFrom((eb) => [
              eb.val(job.id).as('id'),
              eb.val(job.userId).as('user_id'),
              eb.val(job.datasetId).as('dataset_id'),
              eb.val<QueryJobStatus>(started ? 'running' : 'queued').as('status'),
              eb.val(JSON.stringify(job.spec)).as('spec'),
              eb.val(job.specSha256).as('spec_sha256'),
              eb.val(job.accessLevel).as('access_level'),
              eb.val(job.engine).as('engine'),
              eb.val(options.startedBy ?? null).as('worker_id'),
              eb.val(started ? now : null).as('started_at'),
              eb.val(started ? now : null).as('heartbeat_at'),
              eb.val(started ? 1 : 0).as('attempts'),
            ])
            .where((eb) =>
              eb(
                eb
                  .selectFrom('query_jobs')
                  .select(eb.fn.countAll<number>().as('n'))
                  .where('user_id', '=', job.userId)
                  .where('status', 'in', ['queued', 'running']),
                '<',
                options.waitingLimit,
              ),
            ),
        )
        .returningAll()
        .executeTakeFirst();
      return row && toQueryJob(row);
    },

    async get(id: string): Promise<QueryJob | undefined> {
      const row = await db
        .selectFrom('query_jobs')
        .selectAll()
        .where('id', '=', id)
        .executeTakeFirst();
      return row && toQueryJob(row);
    },

    /** A page of the user's jobs, newest first, and how many they have in all. */
    async listForUser(
      userId: string,
      page: { limit: number; offset: number },
    ): Promise<{ jobs: QueryJob[]; total: number }> {
      const { rows, total } = await paged(
        db.selectFrom('query_jobs').where('user_id', '=', userId),
        (query) => query.selectAll().orderBy('created_at', 'desc').orderBy('id'),
        page,
      );
      return { jobs: rows.map(toQueryJob), total };
    },

    /** The queued and running jobs of every user, oldest first: what the platform is doing. */
    async listActive(page: {
      limit: number;
      offset: number;
    }): Promise<{ jobs: QueryJob[]; total: number }> {
      const { rows, total } = await paged(
        db.selectFrom('query_jobs').where('status', 'in', ['queued', 'running'] as const),
        (query) => query.selectAll().orderBy('created_at').orderBy('id'),
        page,
      );
      return { jobs: rows.map(toQueryJob), total };
    },

    /**
     * Takes the oldest queued job (or the one named) for this worker, or none: one statement,
     * whose FOR UPDATE SKIP LOCKED lets workers on one PostgreSQL claim side by side.
     */
    async claim(workerId: string, id?: string): Promise<QueryJob | undefined> {
      const now = new Date();
      const row = await db
        .updateTable('query_jobs')
        .set((eb) => ({
          status: 'running',
          worker_id: workerId,
          started_at: now,
          heartbeat_at: now,
          attempts: eb('attempts', '+', 1),
        }))
        .where('id', '=', (eb) => {
          let next = eb
            .selectFrom('query_jobs')
            .select('id')
            .where('status', '=', 'queued')
            .orderBy('created_at')
            .limit(1);
          if (id !== undefined) next = next.where('id', '=', id);
          return next.forUpdate().skipLocked();
        })
        .returningAll()
        .executeTakeFirst();
      return row && toQueryJob(row);
    },

    /** Puts a job this worker runs back in the queue, for another worker or a restart. */
    async requeue(id: string, workerId: string): Promise<void> {
      await updateOwned(id, workerId)
        .set({ status: 'queued', worker_id: null, heartbeat_at: null, progress: null })
        .execute();
    },

    /** Marks the job alive; tells whether someone asked to cancel it. */
    async heartbeat(
      id: string,
      workerId: string,
      progress?: unknown,
    ): Promise<{ cancel: boolean; lost: boolean }> {
      const row = await updateOwned(id, workerId)
        .set({
          heartbeat_at: new Date(),
          ...(progress === undefined ? {} : { progress: JSON.stringify(progress) }),
        })
        .returning('cancel_requested')
        .executeTakeFirst();
      // `lost`: a job this worker no longer owns (its lease ran out and the reaper requeued or
      // failed it, or it ended elsewhere) is abandoned, which is not the user's cancel.
      return { cancel: row?.cancel_requested ?? false, lost: !row };
    },

    /**
     * Marks the job succeeded with its outcome, while this worker still runs it. A result kept
     * in the catalog (`rows`, a small aggregate) is stored by the same statement, and only if
     * the job is marked: both happen, or neither.
     */
    async succeed(
      id: string,
      workerId: string,
      outcome: {
        summary: unknown;
        resultKey: string;
        releaseIds: string[];
        /** The airlock's verdict, stored with the result so that no path sees it unreviewed. */
        review?: { state: 'not_needed' | 'pending'; report: OutputReport };
        /** The result's rows, for a result stored in the catalog rather than as a file. */
        rows?: ReadonlyArray<Record<string, unknown>>;
        /** When the job ended, where the caller told someone already; now by default. */
        finishedAt?: Date;
      },
    ): Promise<QueryJob | undefined> {
      const values = {
        status: 'succeeded' as const,
        summary: JSON.stringify(outcome.summary),
        result_key: outcome.resultKey,
        release_ids: JSON.stringify(outcome.releaseIds),
        finished_at: outcome.finishedAt ?? new Date(),
        ...(outcome.review
          ? { review: outcome.review.state, review_report: JSON.stringify(outcome.review.report) }
          : {}),
      };
      if (!outcome.rows) {
        const row = await updateOwned(id, workerId).set(values).returningAll().executeTakeFirst();
        return row && toQueryJob(row);
      }
      const rows = JSON.stringify(outcome.rows);
      const row = await db
        .with('done', (creator) =>
          creator
            .updateTable('query_jobs')
            .where('id', '=', id)
            .where('worker_id', '=', workerId)
            .where('status', '=', 'running')
            .set(values)
            .returningAll(),
        )
        .with('stored', (creator) =>
          creator
            .insertInto('query_results')
            .columns(['query_id', 'rows'])
            .expression((eb) =>
              eb
                .selectFrom('done')
                .select(['done.id', sql<string>`cast(${rows} as jsonb)`.as('rows')]),
            ),
        )
        .selectFrom('done')
        .selectAll()
        .executeTakeFirst();
      return row && toQueryJob(row);
    },

    /** The rows of a result stored in the catalog; undefined for one stored as a file. */
    async storedRows(id: string): Promise<Array<Record<string, unknown>> | undefined> {
      const row = await db
        .selectFrom('query_results')
        .select('rows')
        .where('query_id', '=', id)
        .executeTakeFirst();
      return row?.rows;
    },

    async fail(
      id: string,
      workerId: string,
      status: 'failed' | 'cancelled',
      error: { message: string },
    ): Promise<QueryJob | undefined> {
      const row = await updateOwned(id, workerId)
        .set({ status, error: JSON.stringify(error), finished_at: new Date() })
        .returningAll()
        .executeTakeFirst();
      return row && toQueryJob(row);
    },

    /** Results waiting in the airlock for an admin's review, oldest first. */
    async pendingReview(): Promise<QueryJob[]> {
      const rows = await db
        .selectFrom('query_jobs')
        .selectAll()
        .where('review', '=', 'pending')
        .orderBy('finished_at')
        .execute();
      return rows.map(toQueryJob);
    },

    /** Records an admin's decision on a result in the airlock; false when it was not pending. */
    async decideReview(id: string, decision: ReviewDecision): Promise<boolean> {
      const result = await db
        .updateTable('query_jobs')
        .set(reviewColumns(decision))
        .where('id', '=', id)
        .where('review', '=', 'pending')
        .executeTakeFirst();
      return Number(result.numUpdatedRows) === 1;
    },

    /** Cancels a queued job at once; a running one is asked to stop at its next heartbeat. */
    async requestCancel(id: string): Promise<void> {
      await db
        .updateTable('query_jobs')
        .set({
          status: 'cancelled',
          finished_at: new Date(),
          error: JSON.stringify({ message: 'cancelled before it started' }),
        })
        .where('id', '=', id)
        .where('status', '=', 'queued')
        .execute();
      await db
        .updateTable('query_jobs')
        .set({ cancel_requested: true })
        .where('id', '=', id)
        .where('status', '=', 'running')
        .execute();
    },

    /**
     * Running jobs whose worker stopped beating before `staleBefore` died with it: they go back
     * to the queue, or fail once they have been started `maxQueryAttempts` times.
     */
    async reapStale(staleBefore: Date): Promise<number> {
      const requeued = await db
        .updateTable('query_jobs')
        .set({ status: 'queued', worker_id: null, heartbeat_at: null })
        .where('status', '=', 'running')
        .where('heartbeat_at', '<', staleBefore)
        .where('attempts', '<', maxQueryAttempts)
        .where('cancel_requested', '=', false)
        .executeTakeFirst();
      const failed = await db
        .updateTable('query_jobs')
        .set({
          status: 'failed',
          finished_at: new Date(),
          error: JSON.stringify({
            message: 'the worker running this query stopped; it was not retried again',
          }),
        })
        .where('status', '=', 'running')
        .where('heartbeat_at', '<', staleBefore)
        .executeTakeFirst();
      return Number(requeued.numUpdatedRows) + Number(failed.numUpdatedRows);
    },
  };
}
