import type { Readable } from 'node:stream';
import type { ErrorCode } from '@medlake/shared';
import type { Actor } from '../../audit/audit-log.ts';
import { exportsRepository } from '../../catalog/exports-repository.ts';
import { queryJobsRepository } from '../../catalog/query-jobs-repository.ts';
import { usersRepository, type User } from '../../catalog/users-repository.ts';
import type { DownloadLinkParams } from '../../downloads/download-links.ts';
import { AuditedRefusalError } from '../../errors.ts';
import { heldByAirlock } from '../../privacy/airlock.ts';
import type { Platform } from '../../platform.ts';
import { currentDatasetAccess, lostResultAccess } from './dataset-access.ts';

/** How the audit log names someone who used a download link without a session or token. */
export const anonymousDownloader = 'anonymous, with the link';

/** Who is using a download link: a link is a key that anyone holding it can use. */
export type Downloader = {
  /** The signed-in user or token holder, when the request carries a session or token. */
  user: User | null;
  /** What the request carried; `unrecognised` is an ended session or revoked token. */
  credential: 'token' | 'session' | 'unrecognised' | null;
  /** The client's address. */
  source: string;
};

export type OpenedDownload =
  | { kind: 'file'; body: Readable; fileName: string; bytes: number; format: 'csv' | 'parquet' }
  /** On a store with its own links (S3): where to send the client, for a short while. */
  | { kind: 'redirect'; url: string; expiresAt: Date };

/** Why a use of a link was refused, as the audit log records it. */
type Refusal = 'tampered' | 'expired' | 'unknown export' | 'not approved' | 'access ended';
type RefusalCode = Extract<
  ErrorCode,
  'link_invalid' | 'link_expired' | 'export_not_approved' | 'no_dataset_access' | 'access_lost'
>;

const accessEnded =
  'This download link no longer works: the access it was made under has ended (the grant was revoked or expired, the project membership removed, or the account disabled). Ask an administrator for access, then export again.';
const hospitalsEnded =
  'This download link no longer works: the export holds data of a hospital the link’s owner no longer has access to. Run the query again to export it.';
const rowAccessEnded =
  'This download link no longer works: the export holds a result made under row access, which the link’s owner no longer has. Run the query again to export it.';

/**
 * Opens the file a download link points at, checking at each use: the link's signature and
 * expiry, that the export belongs to the user the link was made for, and that this owner still
 * has access to the export's dataset by the rule queries follow (user not disabled, a grant in
 * force, directly or through a project they still belong to; row access still, for a result
 * made under it, and access to every hospital whose data it holds). Every use is audited
 * under who used it, the refused ones too.
 *
 * On S3 the answer is a presigned URL to redirect to, made fresh at each use and lasting at
 * most MEDLAKE_DOWNLOAD_PRESIGN_TTL_SECONDS: the store serves it without asking the server,
 * so a revocation reaches a URL already handed out only when it expires.
 */
export async function openDownload(
  platform: Platform,
  link: DownloadLinkParams,
  downloader: Downloader,
): Promise<OpenedDownload> {
  const now = new Date();
  const verdict = platform.downloads.verify(link, now);
  // Past a good signature, the link's user is the one the server made it for.
  const owner = verdict === 'invalid' ? undefined : link.user;
  const audit = (outcome: 'success' | 'denied', details: Record<string, unknown>) =>
    platform.audit.record({
      action: 'download',
      actor: actorOfDownloader(downloader),
      target: `export:${link.exportId}`,
      outcome,
      details: { ...usedBy(downloader, owner), ...details },
    });
  const refuse = async (reason: Refusal, code: RefusalCode, message: string) => {
    await audit('denied', { reason });
    return new AuditedRefusalError(code, message);
  };

  if (verdict === 'invalid')
    throw await refuse('tampered', 'link_invalid', 'The download link is not valid');
  if (verdict === 'expired') {
    throw await refuse(
      'expired',
      'link_expired',
      'The download link has expired; make a new one from the query',
    );
  }
  const item = await exportsRepository(platform.catalog.db).get(link.exportId);
  const user = await usersRepository(platform.catalog.db).byId(link.user);
  const job = item && (await queryJobsRepository(platform.catalog.db).get(item.queryId));
  if (!item || !user || !job || item.userId !== user.id || job.userId !== user.id) {
    throw await refuse('unknown export', 'link_invalid', 'The download link is not valid');
  }
  // The export's own review, and the airlock's review of the result it was made from.
  if (item.review === 'pending' || item.review === 'rejected' || heldByAirlock(job)) {
    throw await refuse(
      'not approved',
      'export_not_approved',
      'The export has not been approved for download',
    );
  }
  const access = await currentDatasetAccess(platform, user, job.datasetId);
  if (!access) throw await refuse('access ended', 'no_dataset_access', accessEnded);
  const lost = lostResultAccess(job, access);
  if (lost)
    throw await refuse(
      'access ended',
      'access_lost',
      lost === 'row access' ? rowAccessEnded : hospitalsEnded,
    );

  const facts = { query: item.queryId, format: item.format, bytes: item.bytes };
  const lifetime = Math.min(
    platform.env.MEDLAKE_DOWNLOAD_PRESIGN_TTL_SECONDS,
    // Never past the link's own expiry.
    Math.max(1, link.expires - Math.floor(now.getTime() / 1000)),
  );
  const presigned = await platform.store.downloadUrl(item.objectKey, {
    fileName: item.fileName,
    expiresInSeconds: lifetime,
  });
  if (presigned) {
    const expiresAt = new Date(now.getTime() + lifetime * 1000);
    await audit('success', { ...facts, presignedUntil: expiresAt.toISOString() });
    return { kind: 'redirect', url: presigned, expiresAt };
  }
  // Recorded before a byte leaves: a download that breaks off still counts as one.
  await audit('success', facts);
  return {
    kind: 'file',
    body: await platform.store.get(item.objectKey),
    fileName: item.fileName,
    bytes: item.bytes,
    format: item.format,
  };
}

/** The audit log's actor for a use of a link: the signed-in user, or nobody known. */
function actorOfDownloader(downloader: Downloader): Actor {
  return downloader.user
    ? { userId: downloader.user.id, name: downloader.user.email, source: downloader.source }
    : { userId: null, name: anonymousDownloader, source: downloader.source };
}

/** Whether the link was used by its owner, another user, or someone with the link alone. */
function usedBy(downloader: Downloader, owner: string | undefined): Record<string, unknown> {
  const who = !downloader.user
    ? anonymousDownloader
    : owner === undefined
      ? 'a signed-in user'
      : downloader.user.id === owner
        ? 'the owner'
        : 'another user';
  return {
    usedBy: who,
    ...(owner === undefined ? {} : { owner }),
    ...(downloader.credential ? { credential: downloader.credential } : {}),
  };
}
