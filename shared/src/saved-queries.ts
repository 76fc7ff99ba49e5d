import { z } from 'zod';
import { pageOf } from './paging.ts';

/** A query spec kept under a name; shared with a project, its members see it too. */
export const savedQueryViewSchema = z.object({
  id: z.string(),
  name: z.string(),
  description: z.string(),
  datasetId: z.string(),
  projectId: z.string().nullable().describe('the project it is shared with; null: its author only'),
  author: z.string().describe("the author's e-mail"),
  mine: z.boolean().describe('whether the caller is its author (and may delete it)'),
  spec: z.unknown().describe('the query spec (docs/query-spec.md)'),
  createdAt: z.string(),
});
export type SavedQueryView = z.infer<typeof savedQueryViewSchema>;

export const newSavedQuerySchema = z.object({
  name: z.string().trim().min(1).max(200),
  description: z.string().max(5000).default(''),
  /** Share with this project; the author must be one of its members. */
  projectId: z.string().min(1).optional(),
  spec: z.unknown(),
});

export type NewSavedQuery = z.infer<typeof newSavedQuerySchema>;

/** A change to a saved query of one's own: a new name, description, project or spec. */
export const savedQueryChangeSchema = z
  .object({
    name: z.string().trim().min(1).max(200).optional(),
    description: z.string().max(5000).optional(),
    /** Share with this project; null: only its author. */
    projectId: z.string().min(1).nullable().optional(),
    spec: z.unknown().optional(),
  })
  .strict();

export type SavedQueryChange = z.infer<typeof savedQueryChangeSchema>;

export const savedQueryPageSchema = pageOf('queries', savedQueryViewSchema);
