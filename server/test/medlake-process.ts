import { spawn, type ChildProcess, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { once } from 'node:events';
import path from 'node:path';
import { repositoryRoot } from './ingest-helpers.ts';

const bin = path.join(repositoryRoot, 'server/bin/medlake.js');

/** `medlake …` as its own process, with nothing of this process's environment but PATH. */
export function medlake(
  args: string[],
  home: string,
  env: Record<string, string> = {},
): ChildProcessWithoutNullStreams {
  return spawn(process.execPath, [bin, ...args], {
    cwd: repositoryRoot,
    env: { PATH: process.env.PATH ?? '', MEDLAKE_HOME: home, LOG_LEVEL: 'warn', ...env },
  });
}

/** Waits for a process to end: its exit code, and all it printed on both streams in order. */
export async function exitAndOutput(
  child: ChildProcess,
): Promise<{ code: number | null; output: string }> {
  let output = '';
  child.stdout?.on('data', (chunk: Buffer) => (output += chunk.toString()));
  child.stderr?.on('data', (chunk: Buffer) => (output += chunk.toString()));
  const [code] = (await once(child, 'exit')) as [number | null];
  return { code, output };
}

/** Runs a `medlake` command to its end; its standard output, or an error with all it said. */
export async function runMedlake(
  args: string[],
  home: string,
  env: Record<string, string> = {},
): Promise<string> {
  const child = medlake(args, home, env);
  let stdout = '';
  let output = '';
  child.stdout.on('data', (chunk: Buffer) => {
    stdout += chunk.toString();
    output += chunk.toString();
  });
  child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
  const [code] = (await once(child, 'exit')) as [number];
  if (code !== 0) throw new Error(`medlake ${args.join(' ')} exited with ${code}:\n${output}`);
  return stdout;
}

/**
 * Starts a long-running `medlake` command (serve, vault serve) and waits for the line that
 * gives its address: `running at http(s)://host:port/`.
 */
export async function startMedlake(
  args: string[],
  home: string,
  env: Record<string, string> = {},
): Promise<{ child: ChildProcessWithoutNullStreams; url: string }> {
  const child = medlake(args, home, env);
  let output = '';
  const url = await new Promise<string>((resolve, reject) => {
    child.stdout.on('data', (chunk: Buffer) => {
      output += chunk.toString();
      const address = /running at (https?:\/\/[^/ ]+)\//.exec(output)?.[1];
      if (address) resolve(address);
    });
    child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
    child.once('exit', (code) =>
      reject(new Error(`medlake ${args.join(' ')} exited with ${code}:\n${output}`)),
    );
  });
  return { child, url };
}

/** Stops a process with SIGTERM (or the signal given) and waits until it is gone. */
export async function stopMedlake(
  child: ChildProcessWithoutNullStreams,
  signal: NodeJS.Signals = 'SIGTERM',
): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = once(child, 'exit');
  child.kill(signal);
  await exited;
}
