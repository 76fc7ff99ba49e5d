import type {
  DatasetContract,
  OutputReport,
  QuerySummary,
  ResultReviewView,
} from '@medlake/shared';
import type { QueryJob } from '../catalog/query-jobs-repository.ts';
import { AppError } from '../errors.ts';
import type { PlatformParts } from '../platform-parts.ts';
import { checkOutput } from './output-check.ts';

/**
 * The airlock on every path (issue 27). Where a dataset's contract turns it on, a finished
 * result is put through the output checks before anyone sees it; one that fails a check
 * (row-level records, a row-level user's small cells) is held: its pages, the first page and
 * key points of the query's answer, and its exports in every format give nothing of it until
 * another admin approves the result, and nothing ever once one rejects it. The verdict is
 * stored with the result in the same statement that marks the query finished, so there is no
 * moment at which a finished result is readable unreviewed.
 */

/** The airlock's verdict on a result as it is made: held for review, or not needed. */
export type AirlockVerdict = { state: 'not_needed' | 'pending'; report: OutputReport };

/** Which output checks a held result failed, by name: what its owner is told, no figures. */
type FailedCheck = ResultReviewView['checks'][number];

/**
 * The airlock's verdict on a result just made, for a dataset whose contract has an airlock;
 * undefined otherwise. Checked against the contract the query ran under (its disclosure control
 * used the same), which the worker read when the job started.
 */
export async function airlockVerdict(
  platform: PlatformParts,
  contract: Pick<DatasetContract, 'privacy'>,
  outcome: { summary: QuerySummary; resultKey: string },
): Promise<AirlockVerdict | undefined> {
  if (!contract.privacy.airlock) return undefined;
  const report = await checkOutput(platform, {
    summary: outcome.summary,
    resultLocation: platform.store.locate(outcome.resultKey),
    airlock: true,
  });
  return { state: report.needsReview ? 'pending' : 'not_needed', report };
}

/** Whether a result is held by the airlock: waiting for review, or rejected. */
export function heldByAirlock(job: Pick<QueryJob, 'review'>): 'pending' | 'rejected' | undefined {
  const state = job.review?.state;
  return state === 'pending' || state === 'rejected' ? state : undefined;
}

export const waitingForReview =
  'Waiting for review: the dataset’s airlock holds this result (it failed an output check) until an administrator approves it. Nothing of it — rows, figures, key points or exports — is shown before then; look again later.';
export const notApproved =
  'Not approved: an administrator reviewed this result in the dataset’s airlock and did not release it. Nothing of it will be shown or exported; ask the dataset’s administrators, or run a coarser query (an aggregate, fewer columns).';

/** Refuses any read of a held result, with its status: 409 while it waits, 403 once rejected. */
export function assertReleasedByAirlock(job: Pick<QueryJob, 'review'>): void {
  const held = heldByAirlock(job);
  if (held === 'pending') throw new AppError('held_for_review', waitingForReview);
  if (held === 'rejected') throw new AppError('review_rejected', notApproved);
}

/**
 * The airlock's state of a result as its owner sees it: the state, which checks asked for
 * review (by name only: their details quote figures of the result) and a plain sentence.
 * The admin's reason stays with the admins and the audit log.
 */
export function presentReview(job: Pick<QueryJob, 'review'>): ResultReviewView | null {
  const review = job.review;
  if (!review) return null;
  const checks = review.report.checks
    .filter((check) => !check.passed)
    .map((check) => check.check)
    .filter((check): check is FailedCheck => check === 'row_level' || check === 'small_cells');
  const message = {
    not_needed:
      'The dataset’s airlock checked this result and released it: it passed every output check.',
    pending: waitingForReview,
    approved: 'An administrator reviewed this result in the dataset’s airlock and released it.',
    rejected: notApproved,
  }[review.state];
  return { state: review.state, checks, message };
}
