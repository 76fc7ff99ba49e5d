import type { UploadJob } from '@medlake/shared';
import type { Job } from '../../catalog/jobs-repository.ts';

/** An ingest job as the API shows it: what was sent for which month, and how it went. */
export function presentUploadJob(job: Job): UploadJob {
  const params = job.params as {
    datasetId: string;
    hospitalId: string;
    month: string;
    fileName: string;
  };
  return {
    id: job.id,
    status: job.status,
    dataset: params.datasetId,
    hospital: params.hospitalId,
    month: params.month,
    fileName: params.fileName,
    startedAt: job.startedAt.toISOString(),
    finishedAt: job.finishedAt?.toISOString() ?? null,
    progress: job.progress,
    result: job.result,
    error: job.error,
  };
}
