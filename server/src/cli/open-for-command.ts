import type { Env } from '../env.ts';
import { openPlatform, type Platform } from '../platform.ts';
import { cleanInterruptedIngests } from '../use-cases/clean-interrupted-ingests.ts';
import { expireUploadSessions } from '../use-cases/uploads/upload-sessions.ts';

/**
 * Opens the platform for one CLI command and closes it afterwards. The MEDLAKE_HOME lock makes
 * a command beside a running server fail with a clear message instead of sharing its files.
 */
export async function withPlatform<T>(
  env: Env,
  work: (platform: Platform) => Promise<T>,
): Promise<T> {
  const platform = await openPlatform(env, { migrate: true });
  try {
    await cleanInterruptedIngests(platform);
    await expireUploadSessions(platform);
    return await work(platform);
  } finally {
    await platform.close();
  }
}
