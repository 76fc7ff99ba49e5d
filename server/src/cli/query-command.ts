import { querySpecSchema, type QueryJobView, type ResultPage } from '@medlake/shared';
import type { Command } from 'commander';
import { z } from 'zod';
import { queryJobsRepository } from '../catalog/query-jobs-repository.ts';
import { AppError } from '../errors.ts';
import { createLogger } from '../logger.ts';
import { presentQueryJob } from '../query/present-result.ts';
import { executeQueryJob } from '../use-cases/queries/query-worker.ts';
import { requireUser } from '../use-cases/manage-access.ts';
import { cliSource } from '../caller.ts';
import { getQuery, readResultPage } from '../use-cases/queries/read-query.ts';
import { submitQuery } from '../use-cases/queries/submit-query.ts';
import { printTable } from './format.ts';
import { withPlatform } from './open-for-command.ts';
import { readJson } from './read-json.ts';
import { runCommand } from './run-command.ts';

/** Rows printed by the CLI; the stored result keeps them all. */
const printedRows = 1000;

export function registerQueryCommand(program: Command): void {
  program
    .command('query')
    .description(
      'run a query spec with a user’s rights and print the (disclosure-controlled) result',
    )
    .option('-s, --spec <file>', 'the query spec (JSON)')
    .option('-d, --dataset <id>', 'the dataset, when the spec does not name it')
    .option('--as <email>', 'the user whose access applies')
    .option('--json', 'print the job and result as JSON')
    .option('--schema', 'print the query spec’s JSON Schema and exit')
    .action(
      (options: {
        spec?: string;
        dataset?: string;
        as?: string;
        json?: boolean;
        schema?: boolean;
      }) =>
        runCommand(async (env) => {
          if (options.schema) {
            console.log(JSON.stringify(z.toJSONSchema(querySpecSchema, { io: 'input' }), null, 2));
            return;
          }
          if (!options.spec || !options.as) {
            throw new AppError('invalid_input', 'medlake query needs --spec FILE and --as EMAIL');
          }
          const spec = await readJson(options.spec);
          if (options.dataset && spec && typeof spec === 'object' && !('dataset' in spec)) {
            Object.assign(spec, { dataset: options.dataset });
          }
          await withPlatform(env, async (platform) => {
            const user = await requireUser(platform, options.as ?? '');
            const submitted = await submitQuery(platform, { user, source: cliSource() }, spec);
            const workerId = `cli:${process.pid}`;
            const job = await queryJobsRepository(platform.catalog.db).claim(
              workerId,
              submitted.id,
            );
            if (!job) throw new Error('the query job could not be claimed');
            await executeQueryJob(platform, job, workerId, { logger: createLogger(env.LOG_LEVEL) });
            const finished = presentQueryJob(await getQuery(platform, user, job.id));
            // A result the airlock holds shows no summary and no page, only its review.
            const page =
              finished.status === 'succeeded' && finished.summary
                ? await readResultPage(platform, user, job.id, { page: 1, pageSize: printedRows })
                : undefined;
            if (options.json)
              console.log(JSON.stringify({ query: finished, result: page }, null, 2));
            else printQuery(finished, page);
            if (finished.status !== 'succeeded') process.exitCode = 1;
          });
        }),
    );
}

function printQuery(job: QueryJobView, page: ResultPage | undefined): void {
  console.log(`Query ${job.id}: ${job.status}`);
  if (job.error) console.log(`  ${job.error.message}`);
  if (job.review && job.review.state !== 'not_needed') console.log(`  ${job.review.message}`);
  if (!job.summary || !page) return;
  for (const point of job.summary.keyPoints) console.log(`  ${point}`);
  console.log('');
  printTable(
    page.rows.map((row) =>
      Object.fromEntries(page.columns.map((column) => [column.name, formatCell(row[column.name])])),
    ),
  );
  if (page.totalRows > page.rows.length) {
    console.log(
      `(${page.rows.length} of ${page.totalRows} rows shown; --json or the API pages the rest)`,
    );
  }
}

function formatCell(value: unknown): string | number {
  if (value === null || value === undefined) return '';
  if (typeof value === 'number' || typeof value === 'string') return value;
  return JSON.stringify(value);
}
