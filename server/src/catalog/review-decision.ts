/** An admin's decision on a result or an export held by the airlock. */
export type ReviewDecision = { review: 'approved' | 'rejected'; by: string; reason: string };

/** The columns a decision sets: the same on query_jobs and on query_exports. */
export function reviewColumns(decision: ReviewDecision) {
  return {
    review: decision.review,
    reviewed_by: decision.by,
    reviewed_at: new Date(),
    review_reason: decision.reason,
  };
}
