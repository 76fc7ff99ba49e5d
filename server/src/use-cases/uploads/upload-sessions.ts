import { randomUUID } from 'node:crypto';
import type { Readable } from 'node:stream';
import { z } from 'zod';
import { newUploadSessionSchema, partRange, type UploadSessionView } from '@medlake/shared';
import type { Actor } from '../../audit/audit-log.ts';
import { datasetsRepository } from '../../catalog/datasets-repository.ts';
import {
  uploadSessionsRepository,
  type UploadSession,
} from '../../catalog/upload-sessions-repository.ts';
import type { User } from '../../catalog/users-repository.ts';
import { AppError, notFound } from '../../errors.ts';
import type { Platform } from '../../platform.ts';
import { ingestUpload, plainFileName, type IngestResult } from '../ingest-upload.ts';
import { requireUploadRight } from './read-uploads.ts';

/** How long a part's URL stays good: long enough for a slow part, short enough to leak little. */
const partUrlSeconds = 60 * 60;
/** S3 takes at most this many parts for one object. */
const maxParts = 10_000;

type Caller = { user: User; actor: Actor };

/**
 * Uploads in parts, for files too large to send in one request: the client declares the file,
 * PUTs each part where `partTarget` says (the bucket itself on S3, the medlake server on local
 * disk), asks which parts arrived after a dropped connection and sends only the others, then
 * completes the upload, which ingests it as a one-request upload would be.
 */
export async function startUploadSession(
  platform: Platform,
  caller: Caller,
  input: z.input<typeof newUploadSessionSchema>,
): Promise<UploadSessionView> {
  const request = newUploadSessionSchema.parse(input);
  await requireUploadRight(platform, caller.user, request.hospital);
  if (!(await datasetsRepository(platform.catalog.db).get(request.dataset))) {
    throw notFound('dataset_not_found', `Dataset ${request.dataset}`);
  }
  if (Math.ceil(request.bytes / request.partBytes) > maxParts) {
    throw new AppError(
      'upload_invalid',
      `A file of ${request.bytes} bytes needs parts of at least ${Math.ceil(request.bytes / maxParts)} bytes`,
    );
  }
  const id = randomUUID();
  const objectKey = `landing/sessions/${id}.csv`;
  const session = {
    id,
    userId: caller.user.id,
    datasetId: request.dataset,
    hospitalId: request.hospital,
    month: request.month,
    fileName: plainFileName(request.fileName),
    bytes: request.bytes,
    partBytes: request.partBytes,
    objectKey,
    storeUploadId: await platform.store.parts.start(objectKey),
  };
  await uploadSessionsRepository(platform.catalog.db).create(session);
  await platform.audit.record({
    action: 'upload.start',
    actor: caller.actor,
    target: `dataset:${request.dataset}`,
    details: {
      hospital: request.hospital,
      month: request.month,
      session: id,
      bytes: request.bytes,
    },
  });
  return present(platform, { ...session, status: 'open', jobId: null, createdAt: new Date() });
}

/** The session and the parts that have arrived. */
export async function describeUploadSession(
  platform: Platform,
  caller: Caller,
  id: string,
): Promise<UploadSessionView> {
  return present(platform, await sessionOf(platform, caller, id));
}

/** Where the client PUTs one part. */
export async function partTarget(
  platform: Platform,
  caller: Caller,
  id: string,
  partNumber: number,
): Promise<{ method: 'PUT'; url: string; expiresAt: string }> {
  const session = await openSessionOf(platform, caller, id);
  checkPartNumber(session, partNumber);
  const direct = await platform.store.parts.partUrl(
    session.objectKey,
    session.storeUploadId,
    partNumber,
    partUrlSeconds,
  );
  return {
    method: 'PUT',
    url: direct ?? `/api/v1/upload-sessions/${session.id}/parts/${partNumber}`,
    expiresAt: new Date(Date.now() + partUrlSeconds * 1000).toISOString(),
  };
}

/** Stores one part sent through the server: the path of stores without direct part URLs. */
export async function putPart(
  platform: Platform,
  caller: Caller,
  id: string,
  partNumber: number,
  body: Readable,
): Promise<void> {
  const session = await openSessionOf(platform, caller, id);
  checkPartNumber(session, partNumber);
  if (platform.store.parts.directOrigin) {
    // Large files never pass through the server where the store takes parts itself.
    throw new AppError(
      'upload_part_elsewhere',
      'Send the part to the URL its target names, not to medlake',
    );
  }
  await platform.store.parts.put(session.objectKey, session.storeUploadId, partNumber, body);
}

/**
 * Joins the parts, once every one has arrived at its full length, and ingests the file, which
 * the store moves into the landing zone itself: on S3 the file never passes through the server.
 * Whatever is left of it is removed afterwards, as any landed upload is.
 */
export async function completeUploadSession(
  platform: Platform,
  caller: Caller,
  id: string,
): Promise<IngestResult> {
  const session = await openSessionOf(platform, caller, id);
  const arrived = await platform.store.parts.list(session.objectKey, session.storeUploadId);
  const parts = partCount(session);
  const missing = [];
  for (let partNumber = 1; partNumber <= parts; partNumber++) {
    const part = arrived.find((candidate) => candidate.partNumber === partNumber);
    if (part?.bytes !== partRange(session, partNumber).length) missing.push(partNumber);
  }
  if (missing.length > 0) {
    throw new AppError(
      'upload_incomplete',
      `The upload is not complete: part${missing.length === 1 ? '' : 's'} ${missing.slice(0, 20).join(', ')} ${missing.length === 1 ? 'is' : 'are'} missing or of the wrong length`,
    );
  }
  if (!(await uploadSessionsRepository(platform.catalog.db).close(id, 'completed'))) {
    throw new AppError('upload_closed', 'The upload was completed or cancelled already');
  }
  try {
    await platform.store.parts.complete(session.objectKey, session.storeUploadId, arrived);
  } catch (error) {
    // The session is closed now: its parts would otherwise stay behind for good.
    await platform.store.parts.abort(session.objectKey, session.storeUploadId);
    throw error;
  }
  try {
    const result = await ingestUpload(platform, {
      actor: caller.actor,
      datasetId: session.datasetId,
      hospitalId: session.hospitalId,
      month: session.month,
      fileName: session.fileName,
      source: { object: session.objectKey },
    });
    await uploadSessionsRepository(platform.catalog.db).setJob(id, result.jobId);
    return result;
  } finally {
    await platform.store.delete(session.objectKey);
  }
}

/** Cancels an open upload and drops its parts. */
export async function abortUploadSession(
  platform: Platform,
  caller: Caller,
  id: string,
): Promise<void> {
  const session = await openSessionOf(platform, caller, id);
  await cancel(platform, session, caller.actor, 'cancelled by the uploader');
}

/** Closes a session as cancelled, drops its parts and says so in the audit log. */
async function cancel(
  platform: Platform,
  session: Pick<UploadSession, 'id' | 'datasetId' | 'objectKey' | 'storeUploadId'>,
  actor: Actor,
  reason: string,
): Promise<void> {
  await uploadSessionsRepository(platform.catalog.db).close(session.id, 'aborted');
  await platform.store.parts.abort(session.objectKey, session.storeUploadId);
  await platform.audit.record({
    action: 'upload.cancel',
    actor,
    target: `dataset:${session.datasetId}`,
    details: { session: session.id, reason },
  });
}

/** How long an unfinished upload keeps its parts before it is dropped. */
export const uploadSessionDays = 7;
const expiryActor: Actor = { userId: null, name: 'medlake', source: 'start-up clean-up' };

/**
 * Cancels the uploads left unfinished for longer than a week and drops their parts, which
 * would otherwise hold real identifiers in the landing zone indefinitely. Run at start-up.
 */
export async function expireUploadSessions(platform: Platform, now = new Date()): Promise<number> {
  const sessions = uploadSessionsRepository(platform.catalog.db);
  const cutoff = new Date(now.getTime() - uploadSessionDays * 24 * 60 * 60 * 1000);
  const stale = await sessions.openBefore(cutoff);
  for (const session of stale) {
    await cancel(platform, session, expiryActor, `left unfinished for ${uploadSessionDays} days`);
  }
  return stale.length;
}

/** A session of the caller's; someone else's is as unknown as one that does not exist. */
async function sessionOf(platform: Platform, caller: Caller, id: string): Promise<UploadSession> {
  const session = z.string().uuid().safeParse(id).success
    ? await uploadSessionsRepository(platform.catalog.db).get(id)
    : undefined;
  if (!session || session.userId !== caller.user.id)
    throw notFound('upload_not_found', `Upload ${id}`);
  // A steward who lost the hospital since starting loses the upload too.
  await requireUploadRight(platform, caller.user, session.hospitalId);
  return session;
}

async function openSessionOf(platform: Platform, caller: Caller, id: string) {
  const session = await sessionOf(platform, caller, id);
  if (session.status !== 'open') {
    throw new AppError('upload_closed', `The upload is ${session.status}`);
  }
  return session;
}

function partCount(session: UploadSession): number {
  return Math.ceil(session.bytes / session.partBytes);
}

function checkPartNumber(session: UploadSession, partNumber: number): void {
  if (!Number.isInteger(partNumber) || partNumber < 1 || partNumber > partCount(session)) {
    throw new AppError(
      'upload_invalid',
      `This upload has parts 1 to ${partCount(session)}; part ${partNumber} is not one of them`,
    );
  }
}

async function present(platform: Platform, session: UploadSession): Promise<UploadSessionView> {
  const arrived =
    session.status === 'open'
      ? await platform.store.parts.list(session.objectKey, session.storeUploadId)
      : [];
  return {
    id: session.id,
    status: session.status,
    dataset: session.datasetId,
    hospital: session.hospitalId,
    month: session.month,
    fileName: session.fileName,
    bytes: session.bytes,
    partBytes: session.partBytes,
    parts: partCount(session),
    // A part cut short by a dropped connection is not counted: the client sends it again.
    arrived: arrived
      .filter((part) => part.bytes === partRange(session, part.partNumber).length)
      .map((part) => part.partNumber),
    jobId: session.jobId,
  };
}
