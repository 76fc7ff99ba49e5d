import { z } from 'zod';
import { deidentificationAssessmentSchema } from './deidentification.ts';
import { pageOf } from './paging.ts';

export const accessLevelSchema = z.enum(['aggregate', 'row']);

export const grantViewSchema = z.object({
  id: z.string(),
  datasetId: z.string(),
  userId: z.string().nullable(),
  userEmail: z.string().nullable().describe("the holder's e-mail, in lists"),
  projectId: z.string().nullable(),
  level: accessLevelSchema,
  hospitals: z.array(z.string()).nullable(),
  expiresAt: z.string().nullable(),
  createdAt: z.string(),
});

export const newGrantSchema = z
  .object({
    datasetId: z.string().min(1),
    userId: z.uuid().optional(),
    projectId: z.string().min(1).optional(),
    level: accessLevelSchema,
    hospitals: z.array(z.string().min(1)).optional(),
    expiresAt: z.iso.datetime({ offset: true }).optional(),
  })
  .refine((grant) => (grant.userId === undefined) !== (grant.projectId === undefined), {
    message: 'give userId or projectId, not both',
    path: ['userId'],
  });

export const projectViewSchema = z.object({
  id: z.string(),
  name: z.string(),
  description: z.string(),
  members: z.array(z.object({ userId: z.string(), email: z.string() })),
  createdAt: z.string(),
});

export const accessRequestViewSchema = z.object({
  id: z.string(),
  userId: z.string(),
  userEmail: z.string().nullable().describe("the requester's e-mail, in an admin's list"),
  datasetId: z.string(),
  purpose: z.string(),
  level: accessLevelSchema,
  termsVersion: z.number(),
  termsAcceptedAt: z.string(),
  status: z.enum(['pending', 'approved', 'rejected']),
  decidedAt: z.string().nullable(),
  decisionReason: z.string().nullable(),
  grantId: z.string().nullable(),
  createdAt: z.string(),
});

export const newAccessRequestSchema = z.object({
  datasetId: z.string().min(1),
  purpose: z.string().min(1).max(5000),
  level: accessLevelSchema,
  /** Must be true: the researcher accepts the dataset's data-use terms. */
  acceptTerms: z.boolean(),
});

export const accessDecisionSchema = z.object({
  approve: z.boolean(),
  /** The level granted; by default the one asked for. */
  level: accessLevelSchema.optional(),
  expiresAt: z.iso.datetime({ offset: true }).optional(),
  hospitals: z.array(z.string().min(1)).optional(),
  /** Needed for a rejection; the researcher reads it. */
  reason: z.string().max(2000).optional(),
});

export type GrantView = z.infer<typeof grantViewSchema>;
export const grantPageSchema = pageOf('grants', grantViewSchema);
export type ProjectView = z.infer<typeof projectViewSchema>;
export const projectPageSchema = pageOf('projects', projectViewSchema);
export type AccessRequestView = z.infer<typeof accessRequestViewSchema>;
export const accessRequestPageSchema = pageOf('requests', accessRequestViewSchema);

/** A dataset in the catalog as a user sees it: with their access level, or null (request it). */
export const datasetListingSchema = z.object({
  id: z.string(),
  title: z.string(),
  description: z.string(),
  access: accessLevelSchema.nullable(),
  /** What a researcher accepts when requesting access. */
  dataUseTerms: z.string(),
});

export type DatasetListing = z.infer<typeof datasetListingSchema>;

const count = z.union([z.number(), z.string()]).describe('a number, or "<N" when suppressed');

/** A dataset's data dictionary: columns and how each is de-identified, coverage, codes. */
export const datasetDictionarySchema = z.object({
  id: z.string(),
  title: z.string(),
  description: z.string(),
  columns: z.array(z.object({ name: z.string(), type: z.string(), treatment: z.string() })),
  hospitals: z.array(z.string()),
  months: z.array(z.string()),
  releases: z.number(),
  threshold: z.number(),
  codes: z.array(
    z.object({
      code: z.string(),
      label: z.string().nullable(),
      unit: z.string().nullable(),
      rows: count,
      patients: count,
    }),
  ),
  rules: z.array(z.object({ rule: z.string(), description: z.string(), affected: z.number() })),
  /** How many codes match the search; `codes` holds the page asked for. */
  codesMatching: z.number(),
  /** HIPAA's 18 identifiers, the standard the lake meets, the quasi-identifiers seen together. */
  deidentification: deidentificationAssessmentSchema.optional(),
});

export type DatasetDictionary = z.infer<typeof datasetDictionarySchema>;

export const datasetListSchema = z.object({ datasets: z.array(datasetListingSchema) });
/** One's own access requests: a researcher has few, so they come whole. */
export const accessRequestListSchema = z.object({ requests: z.array(accessRequestViewSchema) });
/** The projects one is a member of. */
export const projectListSchema = z.object({ projects: z.array(projectViewSchema) });
/** A steward's hospitals after an assignment changed. */
export const stewardHospitalsSchema = z.object({ hospitals: z.array(z.string()) });
