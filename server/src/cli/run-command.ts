import { ConfigError, loadEnv, type Env } from '../env.ts';
import { AppError } from '../errors.ts';

/**
 * Runs a CLI action with validated configuration and turns the errors we expect (bad
 * configuration, an unreachable database, a locked home) into one clear line and exit code 1.
 * Stack traces are for the unexpected, and only at LOG_LEVEL=debug.
 */
export async function runCommand(
  action: (env: Env) => Promise<void>,
  overrides: Record<string, string | undefined> = {},
): Promise<void> {
  const defined = Object.fromEntries(
    Object.entries(overrides).filter((entry): entry is [string, string] => entry[1] !== undefined),
  );
  try {
    const env = loadEnv({ ...process.env, ...defined });
    await action(env);
  } catch (error) {
    process.exitCode = 1;
    if (error instanceof ConfigError || error instanceof AppError) {
      console.error(`medlake: ${error.message}`);
      const details = error instanceof AppError ? (error.details ?? []) : [];
      if (details.length > 1)
        for (const detail of details) console.error(`  ${detail.path}: ${detail.message}`);
      return;
    }
    const debug = ['debug', 'trace'].includes(process.env.LOG_LEVEL ?? '');
    const message = error instanceof Error ? error.message : String(error);
    console.error(`medlake: unexpected error: ${message}`);
    if (debug && error instanceof Error) console.error(error.stack);
    else console.error('(set LOG_LEVEL=debug to see where it happened)');
  }
}
