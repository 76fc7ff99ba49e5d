import { z } from 'zod';
import { uploadJobSchema } from './ingest.ts';
import { pageOf } from './paging.ts';

/** A hospital as administrators see it: who uploads for it and what it has delivered. */
export const hospitalOverviewSchema = z.object({
  id: z.string(),
  name: z.string(),
  stewards: z.array(z.object({ userId: z.string(), email: z.string() })),
  currentReleases: z.number().int().describe('current releases, over every dataset and month'),
  latestMonth: z.string().nullable().describe('the latest month delivered, YYYY-MM'),
  createdAt: z.string(),
});
export type HospitalOverview = z.infer<typeof hospitalOverviewSchema>;
export const hospitalPageSchema = pageOf('hospitals', hospitalOverviewSchema);

export const newHospitalSchema = z.object({
  id: z.string().min(1).max(32),
  name: z.string().trim().min(1).max(200),
});

/** A query waiting or running, of any user: what an administrator may stop. */
export const activeQuerySchema = z.object({
  id: z.string(),
  dataset: z.string(),
  status: z.enum(['queued', 'running']),
  user: z.string().describe("the user's e-mail"),
  accessLevel: z.enum(['aggregate', 'row']),
  createdAt: z.string(),
  startedAt: z.string().nullable(),
  percent: z.number().nullable().describe("the engine's progress, when it reports one"),
});

/** The work under way: queries queued and running (paged), and ingests running. */
export const runningWorkSchema = pageOf('queries', activeQuerySchema).extend({
  ingests: z.array(uploadJobSchema),
});
export type RunningWork = z.infer<typeof runningWorkSchema>;

const usageSchema = z.object({ objects: z.number().int(), bytes: z.number() });

/** What the platform stores: each zone of the object store, and the lake by dataset. */
export const storageUsageSchema = z.object({
  storage: z.string().describe('local or s3'),
  zones: z.array(usageSchema.extend({ zone: z.enum(['landing', 'lake', 'results']) })),
  datasets: z.array(
    z.object({
      id: z.string(),
      title: z.string(),
      currentReleases: z.number().int(),
      rows: z.number().describe('rows in the current releases'),
      sourceBytes: z.number().describe('bytes of the CSV files the current releases came from'),
    }),
  ),
});
export type StorageUsage = z.infer<typeof storageUsageSchema>;
