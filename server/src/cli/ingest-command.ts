import { stat } from 'node:fs/promises';
import path from 'node:path';
import type { UploadResult } from '@medlake/shared';
import type { Command } from 'commander';
import { cliOperator } from '../caller.ts';
import { AppError } from '../errors.ts';
import { ingestUpload, type IngestJobProgress } from '../use-cases/ingest-upload.ts';
import { formatBytes, formatProblem } from './format.ts';
import { withPlatform } from './open-for-command.ts';
import { runCommand } from './run-command.ts';

type IngestOptions = { dataset: string; hospital: string; month: string; json?: boolean };

export function registerIngestCommand(program: Command): void {
  program
    .command('ingest')
    .description('validate, de-identify and publish one monthly CSV export')
    .argument('<file>', 'the CSV file')
    .requiredOption('-d, --dataset <id>', 'dataset the file belongs to')
    .requiredOption('-H, --hospital <id>', 'hospital that delivered it')
    .requiredOption('-m, --month <YYYY-MM>', 'month the file is for')
    .option('--json', 'print the result as JSON')
    .action((file: string, options: IngestOptions) =>
      runCommand((env) =>
        withPlatform(env, async (platform) => {
          const size = await stat(file).catch(() => {
            throw new AppError('file_not_found', `Cannot read ${file}`);
          });
          const started = Date.now();
          const result = await ingestUpload(platform, {
            actor: cliOperator(),
            datasetId: options.dataset,
            hospitalId: options.hospital,
            month: options.month,
            fileName: path.basename(file),
            source: { file },
            onProgress: options.json
              ? undefined
              : progressPrinter(size.size, started, (line) => console.error(line)),
          });
          if (options.json) console.log(JSON.stringify(result, null, 2));
          else printResult(result, size.size, Date.now() - started);
          if (result.status === 'rejected') process.exitCode = 2;
        }),
      ),
    );
}

/**
 * Writes an ingest's progress, one line per change of how far it got: the pipeline announces
 * each step at 0 % and the engine's first report is often 0 % again, which printed the step's
 * start twice. A report that differs only in its rate (0 rows/s, or none yet) is not a change.
 */
export function progressPrinter(
  total: number,
  started: number,
  write: (line: string) => void,
): (progress: IngestJobProgress) => void {
  let last: string | undefined;
  return (progress) => {
    const reached =
      progress.phase === 'landing'
        ? `landing ${progress.bytes}`
        : describeProgress({ ...progress, rowsPerSecond: null });
    if (reached === last) return;
    last = reached;
    write(progressLine(progress, total, started));
  };
}

function progressLine(progress: IngestJobProgress, total: number, started: number): string {
  if (progress.phase === 'landing') {
    const seconds = Math.max((Date.now() - started) / 1000, 0.001);
    const rate = formatBytes(progress.bytes / seconds);
    return `landing   ${formatBytes(progress.bytes)} of ${formatBytes(total)} (${rate}/s)`;
  }
  return describeProgress(progress);
}

/**
 * One line of an ingest's progress: the phase, how far it got, and how many rows (patients,
 * while pseudonymizing) that is, at which rate. Figures estimated while a step still runs say
 * "about".
 */
export function describeProgress(progress: IngestJobProgress): string {
  if (progress.phase === 'landing') return `landing        ${formatBytes(progress.bytes)}`;
  const parts: string[] = [];
  if (progress.percent !== null) parts.push(`${Math.floor(progress.percent)}%`);
  if (progress.rowsProcessed !== null) {
    const unit = progress.counting;
    const about = progress.estimated ? 'about ' : '';
    const of =
      progress.rowsTotal !== null && progress.rowsTotal !== progress.rowsProcessed
        ? ` of ${progress.rowsTotal.toLocaleString('en-US')}`
        : '';
    parts.push(`${about}${progress.rowsProcessed.toLocaleString('en-US')}${of} ${unit}`);
    if (progress.rowsPerSecond !== null) {
      parts.push(`${progress.rowsPerSecond.toLocaleString('en-US')} ${unit}/s`);
    }
  }
  return `${progress.phase.padEnd(15)}${parts.join(', ')}`.trimEnd();
}

/** What became of an upload, for a person at a terminal. */
export function printResult(result: UploadResult, bytes: number, elapsedMs: number): void {
  switch (result.status) {
    case 'unchanged':
      console.log(
        `Unchanged: this file is identical to the current release ${result.releaseId}; nothing new was published.`,
      );
      return;
    case 'rejected':
      console.log(
        `Rejected: ${result.fileName} was not published (${result.problemCount} problem${result.problemCount === 1 ? '' : 's'}).`,
      );
      for (const problem of result.problems)
        console.log(`  ${formatProblem(result.fileName, problem)}`);
      if (result.problemCount > result.problems.length) {
        console.log(`  … and ${result.problemCount - result.problems.length} more`);
      }
      return;
    case 'published': {
      const seconds = elapsedMs / 1000;
      console.log(
        `Published release ${result.releaseId}: ${result.rows.toLocaleString('en-US')} rows, ${result.quality.patients.toLocaleString('en-US')} patients.`,
      );
      if (result.rejectedRows > 0)
        console.log(
          `  ${result.rejectedRows} rows were left out (see medlake releases show ${result.releaseId}).`,
        );
      for (const change of result.quality.changes) console.log(`  change: ${change.message}`);
      console.log(
        `  ${formatBytes(bytes)} in ${seconds.toFixed(1)} s (${formatBytes(bytes / seconds)}/s, ${Math.round(result.rows / seconds).toLocaleString('en-US')} rows/s)`,
      );
    }
  }
}
