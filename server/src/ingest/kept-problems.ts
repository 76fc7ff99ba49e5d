import { Readable } from 'node:stream';
import type { IngestProblem } from '@medlake/shared';
import type { PlatformParts } from '../platform-parts.ts';

/**
 * How many problems of one upload are kept for its CSV: every one a steward will work through,
 * while a file whose every row is wrong still costs a bounded pass to list them.
 */
export const maxStoredProblems = 100_000;

/** How many of them the catalog keeps with the upload, for its report page. */
export const maxShownProblems = 100;

/** Where an upload's problems are kept as CSV: beside query results, never in the lake. */
export function uploadProblemsKey(jobId: string): string {
  return `results/uploads/${jobId}/problems.csv`;
}

const csvHeader = 'line,column,header,problem,code';

/** One CSV line; the message is the problem in words, the code what scripts match on. */
function csvLine(problem: IngestProblem): string {
  return [problem.line, problem.column, problem.header, problem.message, problem.code]
    .map((value) => {
      const text = value === null ? '' : String(value);
      return /[",\n\r]/.test(text) ? `"${text.replace(/"/g, '""')}"` : text;
    })
    .join(',');
}

/** Problems as CSV lines, the header first, each line ending in a line break. */
export function* csvLines(problems: readonly IngestProblem[]): Generator<string> {
  yield `${csvHeader}\n`;
  for (const problem of problems) yield `${csvLine(problem)}\n`;
}

/**
 * Keeps every problem an ingest found (up to maxStoredProblems) as CSV, and returns the first
 * few for the catalog. Messages name lines and columns, never values, so the file holds
 * nothing of a patient.
 */
export async function keepUploadProblems(
  platform: PlatformParts,
  jobId: string,
  problems: readonly IngestProblem[],
): Promise<IngestProblem[]> {
  if (problems.length > maxShownProblems) {
    await platform.store.put(uploadProblemsKey(jobId), Readable.from(csvLines(problems)));
  }
  return problems.slice(0, maxShownProblems);
}
