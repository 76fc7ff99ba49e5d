import { z } from 'zod';

export const auditOutcomeSchema = z.enum(['success', 'failure', 'denied']);

/** One entry of the audit log as the API shows it. */
export const auditEntrySchema = z.object({
  seq: z.number().int(),
  at: z.string().describe('ISO 8601'),
  actorId: z.string().nullable(),
  actor: z.string().nullable().describe('the e-mail of the user, or the name tried at a login'),
  action: z.string(),
  target: z.string().nullable().describe('what the event was about, as kind:id'),
  outcome: auditOutcomeSchema,
  source: z.string().describe("the client's address, or cli:<user>@<host>"),
  details: z.record(z.string(), z.unknown()),
  hash: z.string(),
  actorNow: z
    .string()
    .nullable()
    .optional()
    .describe("the actor's e-mail as it is now, looked up when the log is read"),
  targetLabel: z.string().nullable().optional().describe('what the target is, in words'),
  names: z
    .record(z.string(), z.string())
    .optional()
    .describe('readable names of the ids in the details (users), looked up when read'),
});

export const auditPageSchema = z.object({
  page: z.number().int(),
  pageSize: z.number().int(),
  total: z.number().int(),
  entries: z.array(auditEntrySchema),
});

export const auditVerificationSchema = z.union([
  z.object({
    ok: z.literal(true),
    entries: z.number().int(),
    head: z.object({ seq: z.number().int(), hash: z.string() }).nullable(),
    checkpoints: z
      .number()
      .int()
      .optional()
      .describe('how many signed checkpoints of the head, kept outside MEDLAKE_HOME, it matched'),
    lastCheckpoint: z.object({ seq: z.number().int(), at: z.string() }).nullable().optional(),
  }),
  z.object({
    ok: z.literal(false),
    entries: z.number().int().describe('how many entries from the first on are intact'),
    firstBad: z.number().int(),
    problem: z.string(),
  }),
]);

export type AuditEntryView = z.infer<typeof auditEntrySchema>;
export type AuditPage = z.infer<typeof auditPageSchema>;

/** One user's (or, signed out, one address's) probing over a period, from the audit log. */
export const suspectSchema = z.object({
  userId: z.string().nullable(),
  who: z.string().describe("the user's e-mail as it is now, or the address for no user"),
  sources: z.array(z.string()),
  refused: z.number().int(),
  notFound: z.number().int(),
  invalid: z.number().int(),
  total: z.number().int(),
  windows: z.number().int().describe('how many counting windows had any'),
  firstAt: z.string(),
  lastAt: z.string(),
  routes: z.record(z.string(), z.number().int()).describe('the routes probed most, with counts'),
});

export const suspiciousActivitySchema = z.object({
  from: z.string(),
  to: z.string(),
  suspects: z.array(suspectSchema),
});

export type Suspect = z.infer<typeof suspectSchema>;
export type SuspiciousActivity = z.infer<typeof suspiciousActivitySchema>;
