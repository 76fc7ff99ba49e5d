import { sql, type Kysely } from 'kysely';

export async function up(db: Kysely<unknown>): Promise<void> {
  // The airlock on every path (issue 27): a result of a dataset with an airlock that fails an
  // output check waits for an admin's review before any of it (pages, key points, exports) is
  // shown. Empty for results made without an airlock.
  await db.schema
    .alterTable('query_jobs')
    .addColumn('review', 'text')
    .addColumn('review_report', 'jsonb')
    .addColumn('reviewed_by', 'uuid')
    .addColumn('reviewed_at', 'timestamptz')
    .addColumn('review_reason', 'text')
    .execute();
  // Results whose exports already wait in the airlock, or were decided there, take that
  // decision for every path: a rejection wins over a wait, a wait over an approval.
  await sql`
    UPDATE query_jobs AS j SET
      review = d.review, review_report = d.report, reviewed_by = d.reviewed_by,
      reviewed_at = d.reviewed_at, review_reason = d.review_reason
    FROM (
      SELECT DISTINCT ON (query_id) query_id, review, report, reviewed_by, reviewed_at, review_reason
      FROM query_exports
      WHERE review IN ('pending', 'approved', 'rejected')
      ORDER BY query_id, CASE review WHEN 'rejected' THEN 0 WHEN 'pending' THEN 1 ELSE 2 END
    ) AS d
    WHERE d.query_id = j.id
  `.execute(db);
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await db.schema
    .alterTable('query_jobs')
    .dropColumn('review')
    .dropColumn('review_report')
    .dropColumn('reviewed_by')
    .dropColumn('reviewed_at')
    .dropColumn('review_reason')
    .execute();
}
