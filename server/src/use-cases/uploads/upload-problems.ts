import { Readable } from 'node:stream';
import type { IngestProblem, QualityReport } from '@medlake/shared';
import type { Job } from '../../catalog/jobs-repository.ts';
import { actorOf, type Caller } from '../../caller.ts';
import { csvLines, uploadProblemsKey } from '../../ingest/kept-problems.ts';
import type { Platform } from '../../platform.ts';
import { readUploadReport } from './read-uploads.ts';

/** The problems the catalog holds with an upload: a rejected file's, or a release's left-out rows. */
function problemsInCatalog(job: Job, quality: QualityReport | null): IngestProblem[] {
  const failure = job.error as { problems?: IngestProblem[] } | null;
  return failure?.problems ?? quality?.rejectedSamples ?? [];
}

/**
 * Every problem of an upload as CSV (line, column, header, the problem in words, its code),
 * streamed: the whole list the ingest kept, not only the first ones its report shows. Only for
 * the hospital's stewards and admins; each download is audited.
 */
export async function streamUploadProblems(
  platform: Platform,
  caller: Caller,
  jobId: string,
): Promise<{ fileName: string; body: Readable }> {
  const { job, quality } = await readUploadReport(platform, caller.user, jobId);
  const key = uploadProblemsKey(job.id);
  const kept = await platform.store.exists(key);
  await platform.audit.record({
    action: 'upload.problems',
    actor: actorOf(caller),
    target: `upload:${job.id}`,
  });
  const params = job.params as { fileName?: string };
  const fileName = `${(params.fileName ?? 'upload.csv').replace(/\.csv$/i, '')}-problems.csv`;
  const body = kept
    ? await platform.store.get(key)
    : Readable.from(csvLines(problemsInCatalog(job, quality)));
  return { fileName, body };
}
