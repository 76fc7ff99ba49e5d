import { open, stat } from 'node:fs/promises';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import {
  errorBodySchema,
  partRange,
  partTargetSchema,
  uploadResultSchema,
  uploadSessionSchema,
  type UploadSessionView,
} from '@medlake/shared';
import type { Command } from 'commander';
import { z } from 'zod';
import { AppError } from '../errors.ts';
import { formatBytes } from './format.ts';
import { printResult } from './ingest-command.ts';

type SendOptions = {
  server: string;
  dataset: string;
  hospital: string;
  month: string;
  partSize: string;
  resume?: string;
  json?: boolean;
};

/** Tries for one part before the command gives up (and can be resumed). */
const attemptsPerPart = 5;

/**
 * `medlake send`: a steward's command-line client for a medlake server elsewhere. It sends a
 * file of any size in parts through the upload-session API (on S3 straight into the bucket),
 * retries a part that fails, and can resume a session another run started.
 */
export function registerSendCommand(program: Command): void {
  program
    .command('send')
    .description(
      'send a monthly CSV export to a medlake server, in parts that resume after a broken connection (token in MEDLAKE_API_TOKEN)',
    )
    .argument('<file>', 'the CSV file')
    .requiredOption('-s, --server <url>', 'the medlake server, e.g. https://medlake.example.org')
    .requiredOption('-d, --dataset <id>', 'dataset the file belongs to')
    .requiredOption('-H, --hospital <id>', 'hospital that delivered it')
    .requiredOption('-m, --month <YYYY-MM>', 'month the file is for')
    .option('--part-size <MiB>', 'size of each part in MiB, 5 or more', '64')
    .option('--resume <session>', 'go on with the parts an earlier run did not send')
    .option('--json', 'print the result as JSON')
    .action(async (file: string, options: SendOptions) => {
      try {
        await send(file, options);
      } catch (error) {
        process.exitCode = 1;
        console.error(`medlake: ${error instanceof Error ? error.message : String(error)}`);
      }
    });
}

async function send(file: string, options: SendOptions): Promise<void> {
  const token = process.env.MEDLAKE_API_TOKEN;
  if (!token) {
    throw new AppError('unauthenticated', 'Set MEDLAKE_API_TOKEN to an API token of yours');
  }
  const server = new MedlakeServer(options.server, token);
  const bytes = (await stat(file)).size;
  const session = options.resume
    ? await server.call(uploadSessionSchema, 'GET', `/api/v1/upload-sessions/${options.resume}`)
    : await server.call(uploadSessionSchema, 'POST', '/api/v1/upload-sessions', {
        dataset: options.dataset,
        hospital: options.hospital,
        month: options.month,
        fileName: path.basename(file),
        bytes,
        partBytes: Math.round(Number(options.partSize) * 1024 * 1024),
      });
  if (session.status !== 'open' || session.bytes !== bytes) {
    throw new AppError(
      'upload_closed',
      `Upload ${session.id} is ${session.status} or for another file`,
    );
  }
  console.error(
    `upload ${session.id}: ${session.parts} parts of ${formatBytes(session.partBytes)}; if this stops, run again with --resume ${session.id}`,
  );

  const started = Date.now();
  const handle = await open(file);
  try {
    for (let part = 1; part <= session.parts; part++) {
      if (session.arrived.includes(part)) continue;
      await sendPart(server, session, part, handle);
      console.error(`sent part ${part} of ${session.parts}`);
    }
  } finally {
    await handle.close();
  }

  const result = await server.call(
    uploadResultSchema,
    'POST',
    `/api/v1/upload-sessions/${session.id}/complete`,
  );
  if (options.json) console.log(JSON.stringify(result, null, 2));
  else printResult(result, bytes, Date.now() - started);
  if (result.status === 'rejected') process.exitCode = 2;
}

/** Sends one part where the server says, trying again after a failure with growing pauses. */
async function sendPart(
  server: MedlakeServer,
  session: UploadSessionView,
  part: number,
  handle: Awaited<ReturnType<typeof open>>,
): Promise<void> {
  const { start, length } = partRange(session, part);
  const body = Buffer.alloc(length);
  await handle.read(body, 0, length, start);
  for (let attempt = 1; ; attempt++) {
    try {
      const target = await server.call(
        partTargetSchema,
        'GET',
        `/api/v1/upload-sessions/${session.id}/parts/${part}/target`,
      );
      await server.put(target.url, body);
      return;
    } catch (error) {
      if (attempt === attemptsPerPart || (error instanceof AppError && error.status < 500)) {
        throw error;
      }
      console.error(`part ${part} failed (${(error as Error).message}); trying again`);
      await sleep(1000 * 2 ** attempt);
    }
  }
}

/** The medlake API, called with the user's token; answers parsed with the shared schemas. */
class MedlakeServer {
  readonly #base: URL;
  readonly #token: string;

  constructor(base: string, token: string) {
    this.#base = new URL(base);
    this.#token = token;
  }

  async call<T extends z.ZodType>(
    schema: T,
    method: 'GET' | 'POST',
    route: string,
    body?: object,
  ): Promise<z.infer<T>> {
    const response = await fetch(new URL(route, this.#base), {
      method,
      headers: {
        authorization: `Bearer ${this.#token}`,
        ...(body ? { 'content-type': 'application/json' } : {}),
      },
      ...(body ? { body: JSON.stringify(body) } : {}),
    });
    const payload: unknown = await response.json().catch(() => null);
    const parsed = schema.safeParse(payload);
    if (parsed.success) return parsed.data;
    throw errorOf(response.status, payload);
  }

  /**
   * PUTs a part: to the server with the token, or to a presigned URL of the bucket, which
   * carries its own signature and must not see the token.
   */
  async put(url: string, body: Buffer): Promise<void> {
    const toServer = url.startsWith('/');
    const response = await fetch(toServer ? new URL(url, this.#base) : url, {
      method: 'PUT',
      headers: {
        'content-type': 'application/octet-stream',
        ...(toServer ? { authorization: `Bearer ${this.#token}` } : {}),
      },
      body,
    });
    if (!response.ok) throw errorOf(response.status, await response.json().catch(() => null));
  }
}

/** The error an answer other than 2xx stands for, keeping the server's code and words. */
export function errorOf(status: number, payload: unknown): AppError | Error {
  const error = errorBodySchema.safeParse(payload);
  if (error.success) return new AppError(error.data.error.code, error.data.error.message);
  // A server of another version may name a cause this CLI does not know: keep its words.
  const other = unknownCodeSchema.safeParse(payload);
  if (!other.success) return new Error(`the server answered ${status}`);
  const { code, message } = other.data.error;
  return new Error(`the server answered ${status} ${code}: ${message}`);
}

const unknownCodeSchema = z.object({ error: z.object({ code: z.string(), message: z.string() }) });
