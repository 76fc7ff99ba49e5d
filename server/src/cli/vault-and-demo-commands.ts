import { userInfo } from 'node:os';
import type { Command } from 'commander';
import { generateExports } from '../demo/generate-exports.ts';
import { AppError } from '../errors.ts';
import { cliSource } from '../caller.ts';
import { reidentifyPatient } from '../use-cases/reidentify-patient.ts';
import { runCommand } from './run-command.ts';
import { registerVaultServiceCommands } from './vault-service-commands.ts';

export function registerVaultCommands(program: Command): void {
  const vault = program.command('vault').description('the pseudonym vault (custodians only)');
  vault
    .command('reidentify')
    .description(
      'map a pseudonym back to the real patient id; every use is audited (vault and catalog)',
    )
    .argument('<pseudonym>')
    .requiredOption('-r, --reason <text>', 'why re-identification is needed (recorded)')
    .option('--custodian <name>', 'who asks (recorded)', userInfo().username)
    .option(
      '--holder <holder>',
      'the pseudonym is the own one of this project (project:ID) or user (user:ID), from their row-level results',
    )
    .action((pseudonym: string, options: { reason: string; custodian: string; holder?: string }) =>
      runCommand(async (env) => {
        const identity = await reidentifyPatient(env, {
          pseudonym,
          ...(options.holder ? { holder: options.holder } : {}),
          custodian: options.custodian,
          reason: options.reason,
          source: cliSource(),
        });
        console.log(
          `${pseudonym} is ${identity.kind} ${identity.realId} of ${identity.space} (first seen ${identity.createdAt})`,
        );
      }),
    );
  registerVaultServiceCommands(vault);
}

type GenerateOptions = {
  hospitals: string;
  months: string;
  rows: string;
  out: string;
  firstMonth: string;
  dirtyShare: string;
  seed: string;
};

export function registerDemoCommands(program: Command): void {
  const demo = program.command('demo').description('synthetic data to try medlake with');
  demo
    .command('generate')
    .description(
      'write realistic monthly exports (with fake identifiers) for the lab-results contract',
    )
    .option('--hospitals <n>', 'hospitals', '2')
    .option('--months <n>', 'months per hospital', '3')
    .option('--rows <n>', 'rows per hospital and month', '10000')
    .option('--first-month <YYYY-MM>', 'first month', '2024-01')
    .option('--dirty-share <share>', 'share of rows with a defect, 0 to 1', '0')
    .option('--seed <n>', 'random seed, for repeatable files', '20261126')
    .requiredOption('-o, --out <dir>', 'output directory')
    .action((options: GenerateOptions) =>
      runCommand(async () => {
        const numbers = {
          hospitals: wholeNumber(options.hospitals, '--hospitals'),
          months: wholeNumber(options.months, '--months'),
          rows: wholeNumber(options.rows, '--rows'),
          seed: wholeNumber(options.seed, '--seed'),
        };
        const dirtyShare = Number(options.dirtyShare);
        if (!(dirtyShare >= 0 && dirtyShare <= 1))
          throw new AppError('invalid_input', '--dirty-share must be between 0 and 1');
        if (!/^\d{4}-(0[1-9]|1[0-2])$/.test(options.firstMonth))
          throw new AppError('invalid_input', '--first-month must be YYYY-MM');
        const files = await generateExports({
          ...numbers,
          outDir: options.out,
          firstMonth: options.firstMonth,
          dirtyShare,
        });
        for (const file of files)
          console.log(
            `${file.file}  hospital ${file.hospital}  month ${file.month}  ${file.rows} rows`,
          );
      }),
    );
}

function wholeNumber(text: string, option: string): number {
  const value = Number(text);
  if (!Number.isInteger(value) || value < 1)
    throw new AppError('invalid_input', `${option} must be a whole number of at least 1`);
  return value;
}
