import type { QuerySpec } from '@medlake/shared';
import type { Dataset } from '../catalog/datasets-repository.ts';
import type { User } from '../catalog/users-repository.ts';
import type { DatasetAccess } from '../policy.ts';

/**
 * What a submit checked (the user, the dataset and the access their grants give), handed to
 * the worker of this process that starts the job. A job that starts within `freshMs` of that
 * check does not check again: a check a moment later could find nothing the submit's did not,
 * and a short query is spared a round of catalog reads. A job that waited longer, or runs in
 * another process, checks again.
 */
export type SubmitChecks = {
  user: User;
  dataset: Dataset;
  access: DatasetAccess;
  /** The spec as the submit parsed it, so that the run need not parse it again. */
  spec?: QuerySpec;
};

/** How long a check of the user's access stands for a run that did not check again. */
export const freshMs = 1000;
const entries = new Map<string, SubmitChecks & { at: number }>();

export function rememberSubmitChecks(jobId: string, checks: SubmitChecks, now = Date.now()): void {
  // Entries of jobs that another process took, or that waited, go stale here; drop them.
  for (const [id, entry] of entries) if (now - entry.at > freshMs) entries.delete(id);
  entries.set(jobId, { ...checks, at: now });
}

/** The submit's checks if they are still fresh, with when they were made; each is taken once. */
export function takeFreshSubmitChecks(
  jobId: string,
  now = Date.now(),
): (SubmitChecks & { at: number }) | undefined {
  const entry = entries.get(jobId);
  entries.delete(jobId);
  return entry && now - entry.at <= freshMs ? entry : undefined;
}
