import {
  auditOutcomeSchema,
  auditPageSchema,
  auditVerificationSchema,
  suspiciousActivitySchema,
} from '@medlake/shared';
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { describeAuditEntries } from '../../audit/describe-entries.ts';
import { actorOf } from '../../caller.ts';
import { requireCaller } from '../../http/authenticate.ts';
import type { Platform } from '../../platform.ts';
import {
  exportAuditLog,
  searchAuditLog,
  listSuspiciousActivity,
  verifyAuditLog,
} from '../../use-cases/audit/read-audit-log.ts';
import { errorResponses } from '../../http/error-responses.ts';

const filter = z.object({
  actor: z.string().max(200).optional(),
  action: z.string().max(64).optional(),
  target: z.string().max(200).optional(),
  outcome: auditOutcomeSchema.optional(),
  from: z.coerce.date().optional(),
  to: z.coerce.date().optional(),
});
const errors = errorResponses(400, 401, 403);

/** The audit log, for auditors and admins: search, export and verify. */
export function auditRoutes(platform: Platform): FastifyPluginAsyncZod {
  return async (app) => {
    app.get(
      '/v1/audit',
      {
        schema: {
          summary: 'Audit log entries matching a filter, newest first',
          tags: ['audit'],
          querystring: filter.extend({
            page: z.coerce.number().int().min(1).default(1),
            pageSize: z.coerce.number().int().min(1).max(500).default(50),
          }),
          response: { 200: auditPageSchema, ...errors },
        },
      },
      async (request) => {
        const caller = requireCaller(request);
        const { page, pageSize, ...wanted } = request.query;
        const found = await searchAuditLog(platform, actorOf(caller), wanted, { page, pageSize });
        const names = await describeAuditEntries(platform.catalog.db, found.entries);
        return {
          page,
          pageSize,
          total: found.total,
          entries: found.entries.map(({ prevHash: _prevHash, ...entry }) => ({
            ...entry,
            at: entry.at.toISOString(),
            actorNow: entry.actorId ? (names.get(entry.actorId) ?? null) : null,
            targetLabel: entry.target ? (names.get(entry.target) ?? null) : null,
            names: Object.fromEntries(
              Object.values(entry.details).flatMap((value) =>
                typeof value === 'string' && names.has(value) ? [[value, names.get(value)!]] : [],
              ),
            ),
          })),
        };
      },
    );

    app.get(
      '/v1/audit/export',
      {
        schema: {
          summary: 'Audit log entries matching a filter as CSV, oldest first',
          tags: ['audit'],
          querystring: filter,
          response: { 200: z.string().describe('text/csv'), ...errors },
        },
      },
      async (request, reply) => {
        const caller = requireCaller(request);
        const exported = await exportAuditLog(platform, actorOf(caller), request.query);
        return reply
          .header('content-type', 'text/csv; charset=utf-8')
          .header('content-disposition', 'attachment; filename="medlake-audit.csv"')
          .header('x-medlake-truncated', String(exported.truncated))
          .header('cache-control', 'private, no-store')
          .send(exported.csv);
      },
    );

    app.get(
      '/v1/audit/suspicious',
      {
        schema: {
          summary:
            'Suspicious activity: who was refused, asked for objects not theirs or sent refused specs, summed over a period (by default the last 7 days)',
          tags: ['audit'],
          querystring: z.object({
            from: z.coerce.date().optional(),
            to: z.coerce.date().optional(),
          }),
          response: { 200: suspiciousActivitySchema, ...errors },
        },
      },
      async (request) => {
        const caller = requireCaller(request);
        const to = request.query.to ?? new Date();
        const from = request.query.from ?? new Date(to.getTime() - 7 * 86_400_000);
        const suspects = await listSuspiciousActivity(platform, actorOf(caller), { from, to });
        return { from: from.toISOString(), to: to.toISOString(), suspects };
      },
    );

    app.post(
      '/v1/audit/verify',
      {
        schema: {
          summary: 'Check the whole chain of the audit log; names the first bad entry',
          tags: ['audit'],
          response: { 200: auditVerificationSchema, ...errors },
        },
      },
      async (request) => {
        const caller = requireCaller(request);
        return verifyAuditLog(platform, actorOf(caller));
      },
    );
  };
}
