import { existsSync } from 'node:fs';
import { Command } from 'commander';
import { version } from '../version.ts';
import { registerAccessCommands } from './access-commands.ts';
import { registerAuditCommands } from './audit-commands.ts';
import { registerBackupCommands } from './backup-commands.ts';
import { registerCatalogCommands } from './catalog-commands.ts';
import { registerDbCommands } from './db-commands.ts';
import { registerGrantCommands } from './grant-commands.ts';
import { registerIngestCommand } from './ingest-command.ts';
import { registerQueryCommand } from './query-command.ts';
import { registerSendCommand } from './send-command.ts';
import { runCommand } from './run-command.ts';
import { serve } from './serve.ts';
import { registerDemoCommands, registerVaultCommands } from './vault-and-demo-commands.ts';

// A .env file in the working directory is read like the real environment, which wins.
if (existsSync('.env')) process.loadEnvFile('.env');

const program = new Command()
  .name('medlake')
  .description('medlake: de-identified hospital data, queried by approved researchers')
  .version(version);

program
  .command('serve')
  .description('start the API and web app (embedded default: PGlite, DuckDB, local disk)')
  .option('-p, --port <port>', 'port to listen on (overrides PORT)')
  .option('-H, --host <host>', 'address to listen on (overrides HOST)')
  .option('--demo', 'load a small synthetic data set first, if the installation is empty')
  .action((options: { port?: string; host?: string; demo?: boolean }) =>
    runCommand((env) => serve(env, { demo: options.demo ?? false }), {
      PORT: options.port,
      HOST: options.host,
    }),
  );

registerIngestCommand(program);
registerSendCommand(program);
registerCatalogCommands(program);
registerQueryCommand(program);
registerAccessCommands(program);
registerGrantCommands(program);
registerAuditCommands(program);
registerVaultCommands(program);
registerDemoCommands(program);
registerDbCommands(program);
registerBackupCommands(program);

await program.parseAsync();
