import { existsSync } from 'node:fs';
import { Command } from 'commander';
import { version } from '../version.ts';
import { registerDbCommands } from './db-commands.ts';
import { runCommand } from './run-command.ts';
import { serve } from './serve.ts';

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
  .action((options: { port?: string; host?: string }) =>
    runCommand((env) => serve(env), {
      PORT: options.port,
      HOST: options.host,
    }),
  );

registerDbCommands(program);

await program.parseAsync();
