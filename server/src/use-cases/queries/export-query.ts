import { randomUUID } from 'node:crypto';
import type { OutputReport, QuerySummary } from '@medlake/shared';
import { datasetsRepository } from '../../catalog/datasets-repository.ts';
import { exportsRepository, type QueryExport } from '../../catalog/exports-repository.ts';
import type { QueryJob } from '../../catalog/query-jobs-repository.ts';
import type { User } from '../../catalog/users-repository.ts';
import { actorOf, type Caller } from '../../caller.ts';
import { AppError } from '../../errors.ts';
import type { Platform } from '../../platform.ts';
import { assertReleasedByAirlock } from '../../privacy/airlock.ts';
import { checkOutput } from '../../privacy/output-check.ts';
import { suppressedCount } from '../../query/present-result.ts';
import type { SqlDialect } from '../../engines/sql-dialect.ts';
import { lostResultAccess, requireDatasetAccess } from './dataset-access.ts';
import { getQuery } from './read-query.ts';
import { resultFileOf } from './stored-result.ts';

export type ExportFormat = QueryExport['format'];

export type ExportLink = {
  exportId: string;
  format: ExportFormat;
  fileName: string;
  bytes: number;
  report: OutputReport;
  review: QueryExport['review'];
  /** None while the export waits for review, or after it was rejected. */
  url: string | null;
  expiresAt: Date | null;
};

/**
 * Makes (once) an export of a finished query's result in the format asked for, with its
 * output-check report, and hands out a fresh download link for it, unless it waits for an
 * admin's review (a dataset with an airlock, an export that fails a check). A result is
 * exported only while the user still has the access it was made under (row access, its
 * hospitals). CSV cells that a spreadsheet would run as a formula are defused.
 */
export async function exportQueryResult(
  platform: Platform,
  caller: Caller,
  queryId: string,
  format: ExportFormat,
): Promise<ExportLink> {
  const { user } = caller;
  const job = await getQuery(platform, user, queryId);
  if (job.status !== 'succeeded' || !job.resultKey) {
    throw new AppError(
      'result_not_ready',
      `The query has no result to export: it is ${job.status}`,
    );
  }
  // A result the airlock holds is exported in no format until it is approved (no file is made,
  // nothing of its size told); an approved one is exported in every format.
  assertReleasedByAirlock(job);
  const summary = job.summary as QuerySummary;
  const access = await requireDatasetAccess(platform, user, job.datasetId);
  const lost = lostResultAccess(job, access);
  if (lost === 'row access') {
    throw new AppError(
      'access_lost',
      summary.kind === 'rows'
        ? 'Exporting rows needs row access to the dataset'
        : 'This result was computed under row access, which you no longer have: run the query again to export it',
    );
  }
  if (lost === 'hospitals') {
    throw new AppError(
      'access_lost',
      'This result holds data of a hospital you no longer have access to: run the query again to export it',
    );
  }

  const exports = exportsRepository(platform.catalog.db);
  const existing = await exports.find(job.id, format);
  const made =
    existing ??
    (await makeExport(
      platform,
      { ...job, resultKey: job.resultKey },
      summary,
      format,
      user,
      job.review,
    ));
  const described = {
    exportId: made.id,
    format,
    fileName: made.fileName,
    bytes: made.bytes,
    report: made.report,
    review: made.review,
  };
  if (made.review === 'pending' || made.review === 'rejected') {
    // The airlock: no link until an admin has approved the export.
    if (!existing) {
      await platform.audit.record({
        action: 'export.create',
        actor: actorOf(caller),
        target: `export:${made.id}`,
        details: { query: job.id, format, bytes: made.bytes, review: made.review },
      });
    }
    return { ...described, url: null, expiresAt: null };
  }
  // Always the server's own link, on S3 too: each use of it is checked against the owner's
  // access then (download-export.ts), and only then redirected to a short presigned URL.
  const link = platform.downloads.create({ exportId: made.id, userId: user.id });
  await platform.audit.record({
    action: 'export.create',
    actor: actorOf(caller),
    target: `export:${made.id}`,
    details: { query: job.id, format, bytes: made.bytes, linkExpiresAt: link.expiresAt },
  });
  return { ...described, url: link.url, expiresAt: link.expiresAt };
}

async function makeExport(
  platform: Platform,
  job: { id: string; datasetId: string; resultKey: string },
  summary: QuerySummary,
  format: ExportFormat,
  user: User,
  /** The airlock's review of the result, which an export of it follows. */
  resultReview: QueryJob['review'],
): Promise<QueryExport> {
  const key = `results/${job.id}/export.${format}`;
  // The result's file, or one written from its rows in the catalog for this export.
  const result = await resultFileOf(platform, job, summary);
  let report: OutputReport;
  try {
    await writeExport(platform, result.location, summary, format, key);
    // A result the airlock reviewed gives its exports that review (approved, or not needed). A
    // result made without an airlock is checked here against the contract as it is now.
    const dataset = resultReview
      ? undefined
      : await datasetsRepository(platform.catalog.db).get(job.datasetId);
    report =
      resultReview?.report ??
      (await checkOutput(platform, {
        summary,
        resultLocation: result.location,
        airlock: dataset?.contract.privacy.airlock ?? false,
      }));
  } finally {
    await result.done();
  }
  const review = resultReview
    ? resultReview.state === 'approved'
      ? 'approved'
      : 'not_needed'
    : report.needsReview
      ? 'pending'
      : 'not_needed';
  return exportsRepository(platform.catalog.db).add({
    id: randomUUID(),
    report,
    review,
    queryId: job.id,
    userId: user.id,
    format,
    objectKey: key,
    fileName: `medlake-${job.datasetId}-${job.id.slice(0, 8)}.${format}`,
    bytes: await platform.store.size(key),
  });
}

/** Writes the export's file from the result's Parquet file at `resultLocation`. */
async function writeExport(
  platform: Platform,
  resultLocation: string,
  summary: QuerySummary,
  format: ExportFormat,
  key: string,
): Promise<void> {
  const { dialect } = platform.engine;
  const source = dialect.scanParquet([resultLocation]);
  const params: unknown[] = [];
  const param = (value: unknown) => {
    params.push(value);
    return dialect.placeholder(params.length);
  };
  const columns = [
    ...summary.columns.map((column) => {
      const name = dialect.quoteIdentifier(column.name);
      // Parquet keeps each double as computed, bit for bit, as the pages give it. CSV writes
      // it as text without binary noise: a mean of 128.2 is 128.2, not 128.20000000000002.
      if (format === 'parquet') return name;
      if (column.type === 'double') {
        return `${shortestText(dialect, dialect.withoutBinaryNoise(name))} AS ${name}`;
      }
      if (column.kind === 'measure' && (column.fn === 'count' || column.fn === 'patients')) {
        // As the API shows it: a held-back cell may hold many more than the threshold.
        return `CASE WHEN suppressed THEN ${param(suppressedCount)} ELSE ${dialect.castToText(name)} END AS ${name}`;
      }
      if (column.type === 'histogram') return `to_json(${name}) AS ${name}`;
      if (column.type === 'varchar') {
        // =, +, - and @ start a formula in spreadsheets; a leading quote keeps it text.
        return `CASE WHEN left(${name}, 1) IN ('=', '+', '-', '@', chr(9), chr(13)) THEN '''' || ${name} ELSE ${name} END AS ${name}`;
      }
      return name;
    }),
    ...(summary.kind === 'aggregate' ? ['suppressed'] : []),
  ];
  await platform.engine.writeFile(
    { sql: `SELECT ${columns.join(', ')} FROM ${source} AS r`, params },
    await platform.store.locateForWrite(key),
    format,
  );
}

/**
 * A double as the shortest text that reads back as it: whole numbers without the ".0" both
 * engines write (173, not 173.0); others as the engine writes them (128.2). Whole numbers
 * past 10^15, infinities and NaN keep the engine's text (no BIGINT holds them); the order of
 * the branches keeps them from the cast.
 */
function shortestText(dialect: SqlDialect, value: string): string {
  const text = dialect.castToText(value);
  const whole = dialect.castToText(`CAST(${value} AS BIGINT)`);
  return `CASE WHEN isnan(${value}) OR abs(${value}) >= 1e15 THEN ${text} WHEN ${value} = floor(${value}) THEN ${whole} ELSE ${text} END`;
}
