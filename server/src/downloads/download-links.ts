import { createHmac, timingSafeEqual } from 'node:crypto';

/**
 * Download links: bound to one export and one user, expiring, and refused when any part of
 * them was changed. On the local store the server signs them with an HMAC and checks them
 * itself; on S3 the same interface hands out presigned URLs.
 */
export interface DownloadLinks {
  create(
    target: { exportId: string; userId: string },
    now?: Date,
  ): { url: string; expiresAt: Date };
  verify(link: DownloadLinkParams, now?: Date): 'valid' | 'expired' | 'invalid';
}

export type DownloadLinkParams = {
  exportId: string;
  user: string;
  /** Unix seconds. */
  expires: number;
  signature: string;
};

export function createSignedDownloadLinks(secret: Buffer, ttlSeconds: number): DownloadLinks {
  const sign = (exportId: string, userId: string, expires: number) =>
    createHmac('sha256', secret)
      .update(`medlake download\n${exportId}\n${userId}\n${expires}`)
      .digest('hex');
  return {
    create({ exportId, userId }, now = new Date()) {
      const expires = Math.floor(now.getTime() / 1000) + ttlSeconds;
      const query = new URLSearchParams({
        user: userId,
        expires: String(expires),
        signature: sign(exportId, userId, expires),
      });
      return { url: `/api/v1/downloads/${exportId}?${query}`, expiresAt: new Date(expires * 1000) };
    },
    verify(link, now = new Date()) {
      const expected = Buffer.from(sign(link.exportId, link.user, link.expires), 'hex');
      const given = Buffer.from(/^[0-9a-f]{64}$/.test(link.signature) ? link.signature : '', 'hex');
      if (given.length !== expected.length || !timingSafeEqual(given, expected)) return 'invalid';
      return link.expires * 1000 <= now.getTime() ? 'expired' : 'valid';
    },
  };
}
