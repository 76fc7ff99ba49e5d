import type { Command } from 'commander';
import { accessRequestsRepository } from '../catalog/access-requests-repository.ts';
import type { AccessLevel } from '../catalog/grants-repository.ts';
import { grantsRepository } from '../catalog/grants-repository.ts';
import { projectsRepository } from '../catalog/projects-repository.ts';
import { usersRepository } from '../catalog/users-repository.ts';
import { cliOperator } from '../caller.ts';
import { AppError } from '../errors.ts';
import { decideAccessRequest } from '../use-cases/access/access-requests.ts';
import { createProject, setProjectMember } from '../use-cases/access/projects.ts';
import { grantDatasetAccess, revokeGrant } from '../use-cases/manage-access.ts';
import { printTable } from './format.ts';
import { withPlatform } from './open-for-command.ts';
import { runCommand } from './run-command.ts';

export function registerGrantCommands(program: Command): void {
  const grants = program.command('grants').description('who may query which dataset');

  grants
    .command('add')
    .description('give a user or a project access to a dataset')
    .option('-e, --email <email>', 'the user')
    .option('-p, --project <id>', 'the project (every member)')
    .requiredOption('-d, --dataset <id>', 'the dataset')
    .requiredOption('-l, --level <level>', 'aggregate (counts and statistics) or row (rows too)')
    .option('--hospitals <ids>', 'only these hospitals, comma-separated')
    .option('--expires <date>', 'the last day of access, YYYY-MM-DD')
    .action(
      (options: {
        email?: string;
        project?: string;
        dataset: string;
        level: string;
        hospitals?: string;
        expires?: string;
      }) =>
        runCommand((env) =>
          withPlatform(env, async (platform) => {
            const grant = await grantDatasetAccess(platform, cliOperator(), {
              email: options.email,
              projectId: options.project,
              datasetId: options.dataset,
              level: parseLevel(options.level),
              hospitals: options.hospitals
                ?.split(',')
                .map((id) => id.trim())
                .filter(Boolean),
              expiresAt: options.expires ? endOfDay(options.expires) : undefined,
            });
            console.log(
              `${options.email ?? `project ${options.project}`} has ${grant.level} access to ${grant.datasetId}` +
                `${grant.hospitals ? ` for ${grant.hospitals.join(', ')}` : ''}` +
                `${grant.expiresAt ? ` until ${lastDayOf(grant.expiresAt)} included` : ''} (grant ${grant.id}).`,
            );
          }),
        ),
    );

  grants
    .command('list')
    .description('list the grants in force')
    .option('-d, --dataset <id>', 'only this dataset')
    .action((options: { dataset?: string }) =>
      runCommand((env) =>
        withPlatform(env, async (platform) => {
          const users = new Map(
            (await usersRepository(platform.catalog.db).list()).map((user) => [user.id, user]),
          );
          const all = await grantsRepository(platform.catalog.db).list({
            datasetId: options.dataset,
          });
          printTable(
            all.map((grant) => ({
              id: grant.id,
              holder: grant.userId
                ? (users.get(grant.userId)?.email ?? grant.userId)
                : `project ${grant.projectId}`,
              dataset: grant.datasetId,
              level: grant.level,
              hospitals: grant.hospitals?.join(', ') ?? 'all',
              'last day': grant.expiresAt ? lastDayOf(grant.expiresAt) : 'no end date',
            })),
          );
        }),
      ),
    );

  grants
    .command('revoke')
    .description('revoke a grant at once')
    .argument('<id>', 'the grant, as `grants list` shows it')
    .action((id: string) =>
      runCommand((env) =>
        withPlatform(env, async (platform) => {
          const grant = await revokeGrant(platform, cliOperator(), id);
          console.log(`Grant ${grant.id} on ${grant.datasetId} revoked.`);
        }),
      ),
    );

  const projects = program
    .command('projects')
    .description('groups of researchers that grants can be given to');

  projects
    .command('create')
    .description('make a project')
    .requiredOption('-i, --id <id>', 'lower-case words joined by dashes')
    .requiredOption('-n, --name <name>', 'its name')
    .option('--description <text>', 'what it is for')
    .action((options: { id: string; name: string; description?: string }) =>
      runCommand((env) =>
        withPlatform(env, async (platform) => {
          const project = await createProject(platform, cliOperator(), options);
          console.log(`Project ${project.id} made.`);
        }),
      ),
    );

  for (const [name, member] of [
    ['add-member', true],
    ['remove-member', false],
  ] as const) {
    projects
      .command(name)
      .description(member ? 'add a user to a project' : 'remove a user from a project')
      .requiredOption('-i, --id <id>', 'the project')
      .requiredOption('-e, --email <email>', 'the user')
      .action((options: { id: string; email: string }) =>
        runCommand((env) =>
          withPlatform(env, async (platform) => {
            const project = await setProjectMember(platform, cliOperator(), {
              projectId: options.id,
              email: options.email,
              member,
            });
            console.log(`Project ${project.id} has ${project.members.length} members.`);
          }),
        ),
      );
  }

  projects
    .command('list')
    .description('list projects')
    .action(() =>
      runCommand((env) =>
        withPlatform(env, async (platform) => {
          printTable(
            (await projectsRepository(platform.catalog.db).list()).map((project) => ({
              id: project.id,
              name: project.name,
              members: project.members.map((member) => member.email).join(', '),
            })),
          );
        }),
      ),
    );

  const requests = program
    .command('access-requests')
    .description("researchers' requests for access, and their decisions");

  requests
    .command('list')
    .description('the requests waiting for a decision (or all with --all)')
    .option('--all', 'decided ones too')
    .action((options: { all?: boolean }) =>
      runCommand((env) =>
        withPlatform(env, async (platform) => {
          const users = new Map(
            (await usersRepository(platform.catalog.db).list()).map((user) => [user.id, user]),
          );
          const found = await accessRequestsRepository(platform.catalog.db).list(
            options.all ? {} : { status: 'pending' },
          );
          printTable(
            found.map((request) => ({
              id: request.id,
              user: users.get(request.userId)?.email ?? request.userId,
              dataset: request.datasetId,
              level: request.level,
              status: request.status,
              purpose: request.purpose.slice(0, 60),
            })),
          );
        }),
      ),
    );

  requests
    .command('approve')
    .description('approve a request: grants access')
    .argument('<id>', 'the request')
    .option('-l, --level <level>', 'the level granted (default: the one asked for)')
    .option('--expires <date>', 'the last day of access, YYYY-MM-DD')
    .action((id: string, options: { level?: string; expires?: string }) =>
      runCommand((env) =>
        withPlatform(env, async (platform) => {
          const decided = await decideAccessRequest(platform, cliOperator(), {
            requestId: id,
            approve: true,
            level: options.level ? parseLevel(options.level) : undefined,
            expiresAt: options.expires ? endOfDay(options.expires) : undefined,
          });
          console.log(`Request ${decided.id} approved (grant ${decided.grantId}).`);
        }),
      ),
    );

  requests
    .command('reject')
    .description('reject a request, with a reason the researcher reads')
    .argument('<id>', 'the request')
    .requiredOption('-r, --reason <text>', 'why')
    .action((id: string, options: { reason: string }) =>
      runCommand((env) =>
        withPlatform(env, async (platform) => {
          const decided = await decideAccessRequest(platform, cliOperator(), {
            requestId: id,
            approve: false,
            reason: options.reason,
          });
          console.log(`Request ${decided.id} rejected.`);
        }),
      ),
    );
}

function parseLevel(level: string): AccessLevel {
  if (level !== 'aggregate' && level !== 'row') {
    throw new AppError('invalid_input', '--level must be aggregate or row');
  }
  return level;
}

/** The day --expires named: a grant ends as that day ends, in UTC (endOfDay). */
function lastDayOf(expiresAt: Date): string {
  return expiresAt.toISOString().slice(0, 10);
}

function endOfDay(day: string): Date {
  if (!/^\d{4}-\d{2}-\d{2}$/.test(day) || Number.isNaN(Date.parse(day))) {
    throw new AppError('invalid_input', '--expires must be a date as YYYY-MM-DD');
  }
  return new Date(`${day}T23:59:59.999Z`);
}
