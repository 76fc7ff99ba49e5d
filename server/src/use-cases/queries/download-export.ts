import type { Readable } from 'node:stream';
import { actorOf } from '../../caller.ts';
import { exportsRepository } from '../../catalog/exports-repository.ts';
import { usersRepository } from '../../catalog/users-repository.ts';
import type { DownloadLinkParams } from '../../downloads/download-links.ts';
import { AppError } from '../../errors.ts';
import type { Platform } from '../../platform.ts';

/**
 * Opens the file a download link points at, after checking the link: its signature, its
 * expiry, and that the export belongs to the user it was made for, who is still active. Each
 * download is audited (a refused link, like every refusal, by the HTTP layer).
 */
export async function openDownload(
  platform: Platform,
  link: DownloadLinkParams,
  source: string,
): Promise<{ body: Readable; fileName: string; bytes: number; format: 'csv' | 'parquet' }> {
  const verdict = platform.downloads.verify(link);
  if (verdict === 'invalid') throw new AppError('FORBIDDEN', 'The download link is not valid');
  if (verdict === 'expired') {
    throw new AppError('FORBIDDEN', 'The download link has expired; make a new one from the query');
  }
  const item = await exportsRepository(platform.catalog.db).get(link.exportId);
  const user = await usersRepository(platform.catalog.db).byId(link.user);
  if (!item || !user || item.userId !== user.id || user.disabledAt !== null) {
    throw new AppError('FORBIDDEN', 'The download link is not valid');
  }
  if (item.review === 'pending' || item.review === 'rejected') {
    throw new AppError('FORBIDDEN', 'The export has not been approved for download');
  }
  // Recorded before a byte leaves: a download that breaks off still counts as one.
  await platform.audit.record({
    action: 'download',
    actor: actorOf({ user, source }),
    target: `export:${item.id}`,
    details: { query: item.queryId, format: item.format, bytes: item.bytes },
  });
  return {
    body: await platform.store.get(item.objectKey),
    fileName: item.fileName,
    bytes: item.bytes,
    format: item.format,
  };
}
