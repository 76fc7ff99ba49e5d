import { randomUUID } from 'node:crypto';
import type { Actor } from '../../audit/audit-log.ts';
import {
  accessRequestsRepository,
  type AccessRequest,
} from '../../catalog/access-requests-repository.ts';
import { datasetsRepository } from '../../catalog/datasets-repository.ts';
import type { AccessLevel } from '../../catalog/grants-repository.ts';
import type { AccessRequestStatus } from '../../catalog/schema.ts';
import { usersRepository } from '../../catalog/users-repository.ts';
import { actorOf, type Caller } from '../../caller.ts';
import { AppError, notFound } from '../../errors.ts';
import type { Platform } from '../../platform.ts';
import { grantDatasetAccess } from '../manage-access.ts';

/**
 * A researcher asks for access to a dataset: a purpose, the level wanted, and acceptance of
 * the dataset's data-use terms (whose version is recorded). One open request per dataset.
 */
export async function requestAccess(
  platform: Platform,
  caller: Caller,
  input: { datasetId: string; purpose: string; level: AccessLevel; acceptTerms: boolean },
): Promise<AccessRequest> {
  const dataset = await datasetsRepository(platform.catalog.db).get(input.datasetId);
  if (!dataset) throw notFound('dataset_not_found', `Dataset ${input.datasetId}`);
  if (!input.acceptTerms) {
    throw new AppError(
      'invalid_input',
      'Access is given only to those who accept the data-use terms',
      [{ path: 'acceptTerms', message: "accept the dataset's data-use terms" }],
    );
  }
  if (input.purpose.trim().length < 20) {
    throw new AppError('invalid_input', 'Describe the purpose in a sentence or two', [
      { path: 'purpose', message: 'at least 20 characters' },
    ]);
  }
  const requests = accessRequestsRepository(platform.catalog.db);
  const open = (await requests.list({ userId: caller.user.id, status: 'pending' })).find(
    (request) => request.datasetId === dataset.id,
  );
  if (open)
    throw new AppError('request_pending', 'You have a request for this dataset waiting already');
  return platform.catalog.db.transaction().execute(async (trx) => {
    const made = await accessRequestsRepository(trx).create({
      id: randomUUID(),
      userId: caller.user.id,
      datasetId: dataset.id,
      purpose: input.purpose.trim(),
      level: input.level,
      termsVersion: dataset.contractVersion,
      termsAcceptedAt: new Date(),
    });
    await platform.audit.record(
      {
        action: 'access_request.create',
        actor: actorOf(caller),
        target: `access_request:${made.id}`,
        details: { dataset: dataset.id, level: input.level, termsVersion: dataset.contractVersion },
      },
      trx,
    );
    return made;
  });
}

export async function listOwnAccessRequests(
  platform: Platform,
  caller: Caller,
): Promise<AccessRequest[]> {
  return accessRequestsRepository(platform.catalog.db).list({ userId: caller.user.id });
}

/**
 * An admin's decision: approval grants the researcher access at the level and until the date
 * the admin chooses (which may differ from what was asked for); rejection needs a reason the
 * researcher will read. The grant, the decision and their audit entries commit together.
 */
export async function decideAccessRequest(
  platform: Platform,
  actor: Actor,
  input: {
    requestId: string;
    approve: boolean;
    level?: AccessLevel;
    expiresAt?: Date;
    hospitals?: string[];
    reason?: string;
  },
): Promise<AccessRequest> {
  const requests = accessRequestsRepository(platform.catalog.db);
  const request = await requests.get(input.requestId);
  if (!request) throw notFound('access_request_not_found', 'Access request');
  if (request.status !== 'pending') {
    throw new AppError('request_decided', `The request was ${request.status} already`);
  }
  const reason = input.reason?.trim() || null;
  if (!input.approve && !reason) {
    throw new AppError('invalid_input', 'Say why the request is rejected', [
      { path: 'reason', message: 'the researcher reads it' },
    ]);
  }
  const requester = await usersRepository(platform.catalog.db).byId(request.userId);
  if (!requester) throw notFound('user_not_found', 'The requesting user');
  await platform.catalog.db.transaction().execute(async (trx) => {
    const grant = input.approve
      ? await grantDatasetAccess(
          platform,
          actor,
          {
            email: requester.email,
            datasetId: request.datasetId,
            level: input.level ?? request.level,
            hospitals: input.hospitals,
            expiresAt: input.expiresAt,
          },
          trx,
        )
      : null;
    const decided = await accessRequestsRepository(trx).decide(request.id, {
      status: input.approve ? 'approved' : 'rejected',
      decidedBy: actor.userId,
      reason,
      grantId: grant?.id ?? null,
      now: new Date(),
    });
    if (!decided) throw new AppError('request_decided', 'The request was decided meanwhile');
    await platform.audit.record(
      {
        action: 'access_request.decide',
        actor,
        target: `access_request:${request.id}`,
        outcome: 'success',
        details: {
          decision: input.approve ? 'approved' : 'rejected',
          user: request.userId,
          dataset: request.datasetId,
          grant: grant?.id ?? null,
          reason,
        },
      },
      trx,
    );
  });
  return (await requests.get(request.id)) as AccessRequest;
}

/** A page of access requests, newest first, with the e-mails of the researchers asking. */
export async function pageAccessRequests(
  platform: Platform,
  filter: { status?: AccessRequestStatus },
  page: { limit: number; offset: number },
): Promise<{ requests: AccessRequest[]; total: number; emails: Map<string, string> }> {
  const found = await accessRequestsRepository(platform.catalog.db).page(filter, page);
  const emails = await usersRepository(platform.catalog.db).emailsOf(
    found.requests.map((item) => item.userId),
  );
  return { ...found, emails };
}
