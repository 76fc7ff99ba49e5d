import type { DuckDBConnection } from '@duckdb/node-api';
import type { EngineOptions } from '../types.ts';

/** Quotes a string as a SQL literal, for paths and names from our own code and configuration. */
export function quoteLiteral(value: string): string {
  return `'${value.replaceAll("'", "''")}'`;
}

export function quoteIdentifier(name: string): string {
  return `"${name.replaceAll('"', '""')}"`;
}

/**
 * Session settings every engine connection gets: DuckDB tracks each statement's progress (for
 * job records and the CLI) but never prints it to the server's terminal.
 */
export const progressTracking = [
  'SET enable_progress_bar = true',
  'SET enable_progress_bar_print = false',
] as const;

/**
 * Locks a DuckDB instance down: it may touch only the allowed directories, may not install or
 * load extensions on its own, and no later statement can loosen that.
 */
export async function lockDown(
  connection: DuckDBConnection,
  options: EngineOptions & { extra?: string[] },
): Promise<void> {
  const directories = [...options.allowedDirectories, options.tempDirectory];
  // Settings go through SQL because allowed_directories cannot be passed at create time.
  await connection.run(`SET allowed_directories = [${directories.map(quoteLiteral).join(', ')}]`);
  await connection.run(`SET temp_directory = ${quoteLiteral(options.tempDirectory)}`);
  for (const statement of options.extra ?? []) await connection.run(statement);
  await connection.run('SET enable_external_access = false');
  await connection.run('SET autoinstall_known_extensions = false');
  await connection.run('SET autoload_known_extensions = false');
  await connection.run('SET lock_configuration = true');
}
