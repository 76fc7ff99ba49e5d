import { hostname, userInfo } from 'node:os';
import type { Actor } from './audit/audit-log.ts';
import type { User } from './catalog/users-repository.ts';

/** A signed-in user and where the request came from: what audited use-cases are given. */
export type Caller = { user: User; source: string };

/** Where a CLI command comes from, for the audit log: the operating-system user and host. */
export function cliSource(): string {
  return `cli:${userInfo().username}@${hostname()}`;
}

/** How the audit log names a caller. */
export function actorOf(caller: Caller): Actor {
  return { userId: caller.user.id, name: caller.user.email, source: caller.source };
}

/** How the audit log names an operator at the CLI, who signs in to the machine, not to medlake. */
export function cliOperator(): Actor {
  const source = cliSource();
  return { userId: null, name: source, source };
}
