import { existsSync } from 'node:fs';
import { chmod, copyFile, mkdir, readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import type { Command } from 'commander';
import { AppError } from '../errors.ts';
import { homeLayout } from '../home-layout.ts';
import { createLogger } from '../logger.ts';
import { openConfiguredVault } from '../vault/configured-vault.ts';
import { makeVaultCertificates, vaultCertificateFiles } from '../vault/vault-certificates.ts';
import { buildVaultService } from '../vault/vault-service.ts';
import { runCommand } from './run-command.ts';

/** `medlake vault certs` and `medlake vault serve`: the vault on a host of its own. */
export function registerVaultServiceCommands(vault: Command): void {
  vault
    .command('certs')
    .description('make a CA, a vault service certificate and a server (client) certificate')
    .argument('<dir>', 'where to write them (must not hold certificates already)')
    .option(
      '--host <name...>',
      'names or addresses the servers reach the vault service by (localhost is always included)',
      [],
    )
    .action((dir: string, options: { host: string[] }) =>
      runCommand(async () => {
        const files = await makeVaultCertificates(path.resolve(dir), { hosts: options.host });
        for (const file of files) console.log(file);
        console.log(
          `Copy ${vaultCertificateFiles.caCert}, ${vaultCertificateFiles.clientCert} and ` +
            `${vaultCertificateFiles.clientKey} to each server; keep ${vaultCertificateFiles.caKey} offline.`,
        );
      }),
    );

  vault
    .command('backup')
    .description(
      'copy the vault (still sealed) and a generated key into a new folder, on the vault host',
    )
    .requiredOption('--to <folder>', 'a new, empty folder, kept apart from the servers’ backups')
    .action((options: { to: string }) =>
      runCommand(async (env) => {
        const to = path.resolve(options.to);
        if (existsSync(to) && (await readdir(to)).length > 0) {
          throw new AppError('backup_refused', `${to} is not empty`);
        }
        await mkdir(to, { recursive: true, mode: 0o700 });
        // An empty folder made beforehand keeps its own mode otherwise.
        await chmod(to, 0o700);
        const opened = await openConfiguredVault(env);
        try {
          // Safe while the service runs: SQLite copies one consistent state.
          opened.copyTo(path.join(to, 'vault.sqlite'));
        } finally {
          opened.close();
        }
        const generatedKey = path.join(homeLayout(env.MEDLAKE_HOME).keys, 'vault.key');
        if (existsSync(generatedKey)) await copyFile(generatedKey, path.join(to, 'vault.key'));
        console.log(
          `Backed up the vault to ${to}` +
            (existsSync(generatedKey)
              ? ', with its generated key.'
              : '; its key is MEDLAKE_VAULT_KEY, kept in your secret store.'),
        );
      }),
    );

  vault
    .command('serve')
    .description('serve the vault to medlake servers over mutual TLS (run it on the vault host)')
    .requiredOption('--certs <dir>', 'the directory `medlake vault certs` wrote')
    .option('-H, --host <host>', 'address to listen on', '127.0.0.1')
    .option('-p, --port <port>', 'port to listen on', '8443')
    .action((options: { certs: string; host: string; port: string }) =>
      runCommand(async (env) => {
        if (env.MEDLAKE_VAULT_URL) {
          throw new AppError(
            'invalid_input',
            'MEDLAKE_VAULT_URL is set: that is a server setting; the vault host keeps its vault in MEDLAKE_VAULT_DIR',
          );
        }
        const port = Number(options.port);
        if (!Number.isInteger(port) || port < 0 || port > 65535) {
          throw new AppError('invalid_input', '--port must be a whole number up to 65535');
        }
        const read = (name: string) => readFile(path.resolve(options.certs, name), 'utf8');
        const tls = {
          ca: await read(vaultCertificateFiles.caCert),
          cert: await read(vaultCertificateFiles.serverCert),
          key: await read(vaultCertificateFiles.serverKey),
        };
        const logger = createLogger(env.LOG_LEVEL);
        const opened = await openConfiguredVault(env);
        const app = await buildVaultService({ vault: opened, tls, logger });
        let closing: Promise<void> | undefined;
        const shutdown = () =>
          (closing ??= (async () => {
            await app.close();
            opened.close();
          })());
        process.once('SIGINT', () => void shutdown());
        process.once('SIGTERM', () => void shutdown());
        try {
          await app.listen({ host: options.host, port });
        } catch (error) {
          await shutdown();
          throw error;
        }
        const address = app.server.address();
        const bound = typeof address === 'object' && address ? address.port : port;
        const host = options.host.includes(':') ? `[${options.host}]` : options.host;
        console.log(
          `medlake vault service is running at https://${host}:${bound}/ (vault: ${env.MEDLAKE_VAULT_DIR})`,
        );
      }),
    );
}
