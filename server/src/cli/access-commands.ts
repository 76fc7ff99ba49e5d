import { tokenScopes, type TokenScope } from '@medlake/shared';
import type { Command } from 'commander';
import type { UserRole } from '../catalog/schema.ts';
import { usersRepository } from '../catalog/users-repository.ts';
import { cliOperator } from '../caller.ts';
import { AppError } from '../errors.ts';
import {
  assignSteward,
  changeRole,
  createUserWithPassword,
  resetPassword,
  setUserDisabled,
} from '../use-cases/accounts/manage-users.ts';
import { createApiToken, userRoles } from '../use-cases/manage-access.ts';
import { printTable } from './format.ts';
import { withPlatform } from './open-for-command.ts';
import { runCommand } from './run-command.ts';

export function registerAccessCommands(program: Command): void {
  const users = program.command('users').description('people who use medlake');

  users
    .command('create')
    .alias('add')
    .description('add a user; prints a one-time password to replace at the first sign-in')
    .requiredOption('-e, --email <email>', 'their e-mail address, which is their login')
    .requiredOption('-n, --name <name>', 'their name')
    .requiredOption('-r, --role <role>', `one of ${userRoles.join(', ')}`)
    .action((options: { email: string; name: string; role: string }) =>
      runCommand((env) =>
        withPlatform(env, async (platform) => {
          const { user, oneTimePassword } = await createUserWithPassword(platform, cliOperator(), {
            ...options,
            role: parseRole(options.role),
          });
          console.error(`User ${user.email} (${user.role}) added. One-time password, shown once:`);
          console.log(oneTimePassword);
        }),
      ),
    );

  users
    .command('reset-password')
    .description('give a user a new one-time password and end their sessions')
    .requiredOption('-e, --email <email>', 'the user')
    .option('--reset-totp', 'also remove their authenticator app (they set up a new one)')
    .action((options: { email: string; resetTotp?: boolean }) =>
      runCommand((env) =>
        withPlatform(env, async (platform) => {
          const { user, oneTimePassword } = await resetPassword(platform, cliOperator(), options);
          console.error(`New one-time password for ${user.email}, shown once:`);
          console.log(oneTimePassword);
        }),
      ),
    );

  for (const [name, disabled] of [
    ['disable', true],
    ['enable', false],
  ] as const) {
    users
      .command(name)
      .description(
        disabled
          ? 'stop a user from signing in; ends their sessions and tokens'
          : 'let a disabled user sign in again',
      )
      .requiredOption('-e, --email <email>', 'the user')
      .action((options: { email: string }) =>
        runCommand((env) =>
          withPlatform(env, async (platform) => {
            const user = await setUserDisabled(platform, cliOperator(), { ...options, disabled });
            console.log(`${user.email} is ${user.disabledAt ? 'disabled' : 'active'}.`);
          }),
        ),
      );
  }

  users
    .command('set-role')
    .description("change a user's role")
    .requiredOption('-e, --email <email>', 'the user')
    .requiredOption('-r, --role <role>', `one of ${userRoles.join(', ')}`)
    .action((options: { email: string; role: string }) =>
      runCommand((env) =>
        withPlatform(env, async (platform) => {
          const user = await changeRole(platform, cliOperator(), {
            email: options.email,
            role: parseRole(options.role),
          });
          console.log(`${user.email} is now ${user.role}.`);
        }),
      ),
    );

  users
    .command('list')
    .description('list users')
    .action(() =>
      runCommand((env) =>
        withPlatform(env, async (platform) => {
          const all = await usersRepository(platform.catalog.db).list();
          printTable(
            all.map((user) => ({
              email: user.email,
              name: user.name,
              role: user.role,
              status: user.disabledAt ? 'disabled' : 'active',
            })),
          );
        }),
      ),
    );

  users
    .command('token')
    .description('make a personal API token for a user (shown once)')
    .requiredOption('-e, --email <email>', 'the user')
    .option('-n, --name <name>', 'what the token is for', 'cli')
    .option('-d, --days <days>', 'how long it lasts, in days', '30')
    .option(
      '-s, --scopes <scopes>',
      `what it may be used for, comma-separated: ${tokenScopes.join(', ')} (default: all its user's role can use)`,
    )
    .action((options: { email: string; name: string; days: string; scopes?: string }) =>
      runCommand((env) =>
        withPlatform(env, async (platform) => {
          const scopes = options.scopes?.split(',').map((scope) => scope.trim());
          const unknown = scopes?.find(
            (scope) => !(tokenScopes as readonly string[]).includes(scope),
          );
          if (unknown !== undefined) {
            throw new AppError(
              'invalid_input',
              `--scopes: ${unknown} is not one of ${tokenScopes.join(', ')}`,
            );
          }
          const created = await createApiToken(platform, cliOperator(), {
            email: options.email,
            name: options.name,
            days: Number(options.days),
            scopes: scopes as TokenScope[] | undefined,
          });
          const { token, expiresAt } = created;
          console.error(
            `Token for ${options.email} (${created.scopes.join(', ')}), valid until ${expiresAt.toISOString()}:`,
          );
          console.log(token);
        }),
      ),
    );

  const stewards = program
    .command('stewards')
    .description('which hospitals each data steward uploads for');
  for (const [name, assigned] of [
    ['assign', true],
    ['unassign', false],
  ] as const) {
    stewards
      .command(name)
      .description(assigned ? 'make a steward a data steward of a hospital' : 'undo that')
      .requiredOption('-e, --email <email>', 'the steward')
      .requiredOption('-H, --hospital <id>', 'the hospital')
      .action((options: { email: string; hospital: string }) =>
        runCommand((env) =>
          withPlatform(env, async (platform) => {
            const hospitals = await assignSteward(platform, cliOperator(), {
              email: options.email,
              hospitalId: options.hospital,
              assigned,
            });
            console.log(
              `${options.email} is a data steward of ${hospitals.length > 0 ? hospitals.join(', ') : 'no hospital'}.`,
            );
          }),
        ),
      );
  }
}

function parseRole(role: string): UserRole {
  if (!(userRoles as readonly string[]).includes(role)) {
    throw new AppError('invalid_input', `--role must be one of ${userRoles.join(', ')}`);
  }
  return role as UserRole;
}
