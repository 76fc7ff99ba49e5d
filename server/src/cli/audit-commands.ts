import type { Command } from 'commander';
import { auditOutcomes, type AuditFilter } from '../audit/audit-log.ts';
import { cliOperator } from '../caller.ts';
import { AppError } from '../errors.ts';
import {
  exportAuditLog,
  searchAuditLog,
  verifyAuditLog,
} from '../use-cases/audit/read-audit-log.ts';
import { printTable } from './format.ts';
import { withPlatform } from './open-for-command.ts';
import { runCommand } from './run-command.ts';

type FilterOptions = {
  actor?: string;
  action?: string;
  target?: string;
  outcome?: string;
  since?: string;
  until?: string;
};

export function registerAuditCommands(program: Command): void {
  const audit = program.command('audit').description('the tamper-evident audit log');

  audit
    .command('verify')
    .description(
      'check every entry of the chain and the chain against its signed checkpoints; names the first entry that cannot be trusted',
    )
    .action(() =>
      runCommand((env) =>
        withPlatform(env, async (platform) => {
          const result = await verifyAuditLog(platform, cliOperator());
          if (result.ok) {
            console.log(
              `The audit log is intact: ${result.entries} entries` +
                (result.head ? `, last #${result.head.seq} ${result.head.hash}` : '') +
                `; it matches ${result.checkpoints ?? 0} signed checkpoint(s)` +
                (result.lastCheckpoint
                  ? `, the newest of entry #${result.lastCheckpoint.seq} at ${result.lastCheckpoint.at}`
                  : '') +
                ` in ${platform.auditCheckpoints.directory}.`,
            );
            return;
          }
          process.exitCode = 1;
          console.error(
            `medlake: the audit log is broken at entry #${result.firstBad}: ${result.problem}. ` +
              `Entries 1–${result.entries} are intact.`,
          );
        }),
      ),
    );

  const withFilters = (command: Command) =>
    command
      .option('--actor <text>', 'entries whose actor contains this (e-mail or login name)')
      .option('--action <prefix>', 'entries whose action starts with this, e.g. login or query')
      .option('--target <target>', 'entries about this, e.g. dataset:lab-results')
      .option('--outcome <outcome>', auditOutcomes.join(', '))
      .option('--since <date>', 'from this day or time on (ISO 8601)')
      .option('--until <date>', 'before this day or time (ISO 8601)');

  withFilters(audit.command('list'))
    .description('the newest entries, filtered')
    .option('-n, --limit <n>', 'how many', '50')
    .option('--json', 'print JSON')
    .action((options: FilterOptions & { limit: string; json?: boolean }) =>
      runCommand((env) =>
        withPlatform(env, async (platform) => {
          const limit = Number(options.limit);
          if (!Number.isInteger(limit) || limit < 1 || limit > 10_000) {
            throw new AppError('invalid_input', '--limit must be from 1 to 10000');
          }
          const { entries, total } = await searchAuditLog(
            platform,
            cliOperator(),
            parseFilter(options),
            { page: 1, pageSize: limit },
          );
          if (options.json) {
            console.log(JSON.stringify({ total, entries }, null, 2));
            return;
          }
          printTable(
            entries.map((entry) => ({
              '#': entry.seq,
              at: entry.at.toISOString(),
              actor: entry.actor ?? '-',
              action: entry.action,
              target: entry.target ?? '-',
              outcome: entry.outcome,
              source: entry.source,
            })),
          );
          console.error(`${entries.length} of ${total} matching entries.`);
        }),
      ),
    );

  withFilters(audit.command('export'))
    .description('the matching entries as CSV on standard output, oldest first')
    .action((options: FilterOptions) =>
      runCommand((env) =>
        withPlatform(env, async (platform) => {
          const { csv, entries, truncated } = await exportAuditLog(
            platform,
            cliOperator(),
            parseFilter(options),
          );
          process.stdout.write(csv);
          console.error(
            `${entries} entries${truncated ? ' (the newest; narrow the filter for the rest)' : ''}.`,
          );
        }),
      ),
    );
}

function parseFilter(options: FilterOptions): AuditFilter {
  const date = (value: string | undefined, flag: string) => {
    if (value === undefined) return undefined;
    const parsed = new Date(value);
    if (Number.isNaN(parsed.getTime())) {
      throw new AppError('invalid_input', `${flag} must be a date such as 2026-11-01`);
    }
    return parsed;
  };
  if (options.outcome && !(auditOutcomes as readonly string[]).includes(options.outcome)) {
    throw new AppError('invalid_input', `--outcome must be one of ${auditOutcomes.join(', ')}`);
  }
  return {
    actor: options.actor,
    action: options.action,
    target: options.target,
    outcome: options.outcome as AuditFilter['outcome'],
    from: date(options.since, '--since'),
    to: date(options.until, '--until'),
  };
}
