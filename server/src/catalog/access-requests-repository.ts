import type { Selectable } from 'kysely';
import type { AccessLevel } from './grants-repository.ts';
import type { CatalogDb } from './catalog.ts';
import { paged } from './paged.ts';
import type { AccessRequestStatus, AccessRequestsTable } from './schema.ts';

export type AccessRequest = {
  id: string;
  userId: string;
  datasetId: string;
  purpose: string;
  level: AccessLevel;
  termsVersion: number;
  termsAcceptedAt: Date;
  status: AccessRequestStatus;
  decidedBy: string | null;
  decidedAt: Date | null;
  decisionReason: string | null;
  grantId: string | null;
  createdAt: Date;
};

function toAccessRequest(row: Selectable<AccessRequestsTable>): AccessRequest {
  return {
    id: row.id,
    userId: row.user_id,
    datasetId: row.dataset_id,
    purpose: row.purpose,
    level: row.level,
    termsVersion: row.terms_version,
    termsAcceptedAt: row.terms_accepted_at,
    status: row.status,
    decidedBy: row.decided_by,
    decidedAt: row.decided_at,
    decisionReason: row.decision_reason,
    grantId: row.grant_id,
    createdAt: row.created_at,
  };
}

/** Researchers' requests for access to datasets, and their decisions. */
export function accessRequestsRepository(db: CatalogDb) {
  return {
    async create(
      request: Pick<
        AccessRequest,
        'id' | 'userId' | 'datasetId' | 'purpose' | 'level' | 'termsVersion' | 'termsAcceptedAt'
      >,
    ): Promise<AccessRequest> {
      const row = await db
        .insertInto('access_requests')
        .values({
          id: request.id,
          user_id: request.userId,
          dataset_id: request.datasetId,
          purpose: request.purpose,
          level: request.level,
          terms_version: request.termsVersion,
          terms_accepted_at: request.termsAcceptedAt,
          status: 'pending',
        })
        .returningAll()
        .executeTakeFirstOrThrow();
      return toAccessRequest(row);
    },

    async get(id: string): Promise<AccessRequest | undefined> {
      const row = await db
        .selectFrom('access_requests')
        .selectAll()
        .where('id', '=', id)
        .executeTakeFirst();
      return row && toAccessRequest(row);
    },

    /** Newest first, of one user or in one status, or all. */
    async list(
      filter: { userId?: string; status?: AccessRequestStatus } = {},
    ): Promise<AccessRequest[]> {
      let query = db.selectFrom('access_requests').selectAll();
      if (filter.userId) query = query.where('user_id', '=', filter.userId);
      if (filter.status) query = query.where('status', '=', filter.status);
      const rows = await query.orderBy('created_at', 'desc').limit(500).execute();
      return rows.map(toAccessRequest);
    },

    /** A page of requests, newest first, and how many match. */
    async page(
      filter: { status?: AccessRequestStatus },
      page: { limit: number; offset: number },
    ): Promise<{ requests: AccessRequest[]; total: number }> {
      let query = db.selectFrom('access_requests');
      if (filter.status) query = query.where('status', '=', filter.status);
      const { rows, total } = await paged(
        query,
        (q) => q.selectAll().orderBy('created_at', 'desc').orderBy('id'),
        page,
      );
      return { requests: rows.map(toAccessRequest), total };
    },

    /** Records the decision on a pending request; false when it was decided already. */
    async decide(
      id: string,
      decision: {
        status: 'approved' | 'rejected';
        decidedBy: string | null;
        reason: string | null;
        grantId: string | null;
        now: Date;
      },
    ): Promise<boolean> {
      const result = await db
        .updateTable('access_requests')
        .set({
          status: decision.status,
          decided_by: decision.decidedBy,
          decided_at: decision.now,
          decision_reason: decision.reason,
          grant_id: decision.grantId,
        })
        .where('id', '=', id)
        .where('status', '=', 'pending')
        .executeTakeFirst();
      return Number(result.numUpdatedRows) === 1;
    },
  };
}
