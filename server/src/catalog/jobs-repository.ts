import type { CatalogDb } from './catalog.ts';
import { paged } from './paged.ts';
import type { Selectable } from 'kysely';
import type { JobStatus, JobsTable } from './schema.ts';

export type Job = {
  id: string;
  kind: string;
  status: JobStatus;
  params: unknown;
  progress: unknown;
  result: unknown;
  error: unknown;
  startedAt: Date;
  finishedAt: Date | null;
  userId: string | null;
  hospitalId: string | null;
};

type JobRow = Selectable<JobsTable>;

function toJob(row: JobRow): Job {
  return {
    id: row.id,
    kind: row.kind,
    status: row.status,
    params: row.params,
    progress: row.progress,
    result: row.result,
    error: row.error,
    startedAt: row.started_at,
    finishedAt: row.finished_at,
    userId: row.user_id,
    hospitalId: row.hospital_id,
  };
}

/** Long-running work (ingests now; queries and exports later) and how far it got. */
export function jobsRepository(db: CatalogDb) {
  return {
    async start(job: {
      id: string;
      kind: string;
      params: unknown;
      userId?: string | null;
      hospitalId?: string;
    }): Promise<void> {
      await db
        .insertInto('jobs')
        .values({
          id: job.id,
          kind: job.kind,
          status: 'running',
          params: JSON.stringify(job.params),
          user_id: job.userId ?? null,
          hospital_id: job.hospitalId ?? null,
          heartbeat_at: new Date(),
        })
        .execute();
    },

    /** Jobs of a kind, newest first; only those of the given hospitals unless null (all). */
    async list(
      kind: string,
      hospitals: readonly string[] | null,
      page: { page: number; pageSize: number },
    ): Promise<{ jobs: Job[]; total: number }> {
      let query = db.selectFrom('jobs').where('kind', '=', kind);
      if (hospitals !== null) {
        if (hospitals.length === 0) return { jobs: [], total: 0 };
        query = query.where('hospital_id', 'in', hospitals);
      }
      const { rows, total } = await paged(
        query,
        (q) => q.selectAll().orderBy('started_at', 'desc'),
        { limit: page.pageSize, offset: (page.page - 1) * page.pageSize },
      );
      return { jobs: rows.map(toJob), total };
    },

    async reportProgress(id: string, progress: unknown): Promise<void> {
      await db
        .updateTable('jobs')
        .set({ progress: JSON.stringify(progress) })
        .where('id', '=', id)
        .where('status', '=', 'running')
        .execute();
    },

    /**
     * Ends a running job. False when it was not running any more: another server took it for
     * dead (its lease expired) and failed it, so its outcome must not count.
     */
    async finish(
      id: string,
      outcome: { status: 'succeeded'; result: unknown } | { status: 'failed'; error: unknown },
    ): Promise<boolean> {
      const updated = await db
        .updateTable('jobs')
        .set({
          status: outcome.status,
          result: outcome.status === 'succeeded' ? JSON.stringify(outcome.result) : null,
          error: outcome.status === 'failed' ? JSON.stringify(outcome.error) : null,
          finished_at: new Date(),
          heartbeat_at: null,
        })
        .where('id', '=', id)
        .where('status', '=', 'running')
        .executeTakeFirst();
      return Number(updated.numUpdatedRows) > 0;
    },

    /** Renews a running job's lease: its server is alive. */
    async heartbeat(id: string): Promise<void> {
      await db
        .updateTable('jobs')
        .set({ heartbeat_at: new Date() })
        .where('id', '=', id)
        .where('status', '=', 'running')
        .execute();
    },

    /** Running jobs of a kind whose last beat is older than `staleBefore`: their server died. */
    async listExpired(kind: string, staleBefore: Date): Promise<Job[]> {
      const rows = await db
        .selectFrom('jobs')
        .selectAll()
        .where('kind', '=', kind)
        .where('status', '=', 'running')
        .where((eb) =>
          eb.or([eb('heartbeat_at', 'is', null), eb('heartbeat_at', '<', staleBefore)]),
        )
        .execute();
      return rows.map(toJob);
    },

    async get(id: string): Promise<Job | undefined> {
      const row = await db.selectFrom('jobs').selectAll().where('id', '=', id).executeTakeFirst();
      return row && toJob(row);
    },

    /** How many jobs of the kind are running. */
    async countRunning(kind: string): Promise<number> {
      const { n } = await db
        .selectFrom('jobs')
        .select((eb) => eb.fn.countAll<string>().as('n'))
        .where('kind', '=', kind)
        .where('status', '=', 'running')
        .executeTakeFirstOrThrow();
      return Number(n);
    },

    async listRunning(kind: string): Promise<Job[]> {
      const rows = await db
        .selectFrom('jobs')
        .selectAll()
        .where('kind', '=', kind)
        .where('status', '=', 'running')
        .execute();
      return rows.map(toJob);
    },

    /** Ended jobs whose files could not all be removed when they ended. */
    async listWithLeftovers(kind: string): Promise<Job[]> {
      const rows = await db
        .selectFrom('jobs')
        .selectAll()
        .where('kind', '=', kind)
        .where('leftovers', '=', true)
        .where('status', '!=', 'running')
        .execute();
      return rows.map(toJob);
    },

    async setLeftovers(id: string, leftovers: boolean): Promise<void> {
      await db.updateTable('jobs').set({ leftovers }).where('id', '=', id).execute();
    },
  };
}
