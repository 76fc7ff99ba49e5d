import type { FastifyHelmetOptions } from '@fastify/helmet';
import type { FastifyReply, FastifyRequest } from 'fastify';

/** The largest JSON body the API reads (query specs, forms). Uploads stream past it. */
export const jsonBodyLimit = 1024 * 1024;

/**
 * Security headers on every answer: a content security policy that lets the page load only
 * its own scripts and nothing embed it (frame-ancestors 'none'), no MIME sniffing, no
 * referrer leaving the site. HSTS is sent by `strictTransportSecurity`, over https only. The
 * page may connect to its own server, and to the bucket that takes upload parts directly.
 */
export const helmetOptions = (directUploadOrigin: string | undefined): FastifyHelmetOptions => ({
  contentSecurityPolicy: {
    directives: {
      defaultSrc: ["'self'"],
      scriptSrc: ["'self'"],
      // Material UI writes its styles at run time.
      styleSrc: ["'self'", "'unsafe-inline'"],
      imgSrc: ["'self'", 'data:'],
      connectSrc: ["'self'", ...(directUploadOrigin ? [directUploadOrigin] : [])],
      frameAncestors: ["'none'"],
      formAction: ["'self'"],
      objectSrc: ["'none'"],
      baseUri: ["'self'"],
      upgradeInsecureRequests: null,
    },
  },
  hsts: false,
  referrerPolicy: { policy: 'no-referrer' },
});

/**
 * An onSend hook: HSTS over https only. Sent over plain http it would be ignored anyway, and a
 * development server on http must stay reachable.
 */
export async function strictTransportSecurity(
  request: FastifyRequest,
  reply: FastifyReply,
): Promise<void> {
  if (request.protocol === 'https') {
    reply.header('strict-transport-security', 'max-age=31536000; includeSubDomains');
  }
}
