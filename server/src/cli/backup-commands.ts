import type { Command } from 'commander';
import { cliOperator } from '../caller.ts';
import { backupHome, restoreHome } from '../use-cases/backup/backup-home.ts';
import { formatBytes } from './format.ts';
import { withPlatform } from './open-for-command.ts';
import { runCommand } from './run-command.ts';

export function registerBackupCommands(program: Command): void {
  program
    .command('backup')
    .description(
      'back up the catalog, lake, results and keys into one folder, and the vault into another',
    )
    .requiredOption('--to <folder>', 'a new folder for the catalog, lake, results and keys')
    .requiredOption('--vault-to <folder>', 'a new folder, elsewhere, for the vault and its key')
    .action((options: { to: string; vaultTo: string }) =>
      runCommand((env) =>
        withPlatform(env, async (platform) => {
          const manifest = await backupHome(platform, cliOperator(), options);
          const bytes = manifest.objects.reduce((sum, object) => sum + object.bytes, 0);
          console.log(
            `Backed up the catalog, ${manifest.objects.length} objects (${formatBytes(bytes)}) and ${manifest.keys.length} keys to ${options.to}, and the vault to ${options.vaultTo}.`,
          );
        }),
      ),
    );

  program
    .command('restore')
    .description('restore a backup onto an empty MEDLAKE_HOME (and vault folder)')
    .requiredOption('--from <folder>', 'the folder `medlake backup --to` wrote')
    .requiredOption('--vault-from <folder>', 'the folder `medlake backup --vault-to` wrote')
    .action((options: { from: string; vaultFrom: string }) =>
      runCommand(async (env) => {
        const manifest = await restoreHome(env, cliOperator(), options);
        console.log(
          `Restored the backup of ${manifest.createdAt} (${manifest.objects.length} objects) into ${env.MEDLAKE_HOME}.`,
        );
      }),
    );
}
