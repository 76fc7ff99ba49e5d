import { Agent, request as httpsRequest } from 'node:https';
import { AppError } from '../errors.ts';
import type { VaultClient } from './vault-client.ts';
import type { PseudonymEntry, Reidentification } from './vault.ts';

export type RemoteVaultOptions = {
  /** The service's address, https://host:port. */
  url: string;
  /** PEM text: the deployment's CA, and this server's client certificate and key. */
  ca: string;
  cert: string;
  key: string;
};

/**
 * The client of `medlake vault serve`: the same calls as the embedded vault, over mutual TLS.
 * The server holding it has a client certificate, never the vault key. Failures name the
 * vault service, so an ingest that stops because the vault is away says so.
 */
export function remoteVaultClient(options: RemoteVaultOptions): VaultClient {
  const base = new URL(options.url);
  const description = `the vault service at ${base.origin}`;
  // Kept alive: an ingest sends one batch after another to the same service.
  const agent = new Agent({
    keepAlive: true,
    maxSockets: 4,
    ca: options.ca,
    cert: options.cert,
    key: options.key,
  });

  const call = (method: 'GET' | 'POST', route: string, body?: unknown) =>
    new Promise<{ status: number; text: string }>((resolve, reject) => {
      const payload = body === undefined ? undefined : JSON.stringify(body);
      const outgoing = httpsRequest(
        new URL(route, base),
        {
          method,
          agent,
          headers: payload
            ? { 'content-type': 'application/json', 'content-length': Buffer.byteLength(payload) }
            : {},
          timeout: 120_000,
        },
        (incoming) => {
          const chunks: Buffer[] = [];
          incoming.on('data', (chunk: Buffer) => chunks.push(chunk));
          incoming.on('error', (error) => reject(unreachable(description, error)));
          incoming.on('end', () =>
            resolve({
              status: incoming.statusCode ?? 0,
              text: Buffer.concat(chunks).toString('utf8'),
            }),
          );
        },
      );
      outgoing.on('timeout', () => outgoing.destroy(new Error('no answer within 120 s')));
      outgoing.on('error', (error) => reject(unreachable(description, error)));
      outgoing.end(payload);
    });

  const json = async <T>(method: 'GET' | 'POST', route: string, body?: unknown): Promise<T> => {
    const answer = await call(method, route, body);
    if (answer.status >= 200 && answer.status < 300) return JSON.parse(answer.text) as T;
    throw refusal(description, answer);
  };

  return {
    description,

    async linkageKey() {
      return (await json<{ linkageKey: string }>('GET', '/v1/linkage-key')).linkageKey;
    },

    async pseudonymize(scope, realIds) {
      const ids = [...new Set(realIds)];
      const { entries } = await json<{ entries: Array<[string, number]> }>(
        'POST',
        '/v1/pseudonyms',
        { ...scope, ids },
      );
      if (entries.length !== ids.length) {
        throw new AppError('vault_unavailable', `${description} answered a batch in part`);
      }
      const result = new Map<string, PseudonymEntry>();
      ids.forEach((id, n) => {
        const [pseudonym, shiftDays] = entries[n] ?? ['', 0];
        result.set(id, { pseudonym, shiftDays });
      });
      return result;
    },

    async reidentify(pseudonym, request) {
      return await json<Reidentification>('POST', '/v1/reidentifications', {
        pseudonym,
        custodian: request.custodian,
        reason: request.reason,
        // Where the request came from on this side (host, CLI user): the vault's log says so.
        ...(request.source ? { source: request.source } : {}),
      });
    },

    async findPatientPseudonym(matches) {
      const answer = await call('GET', '/v1/patient-pseudonyms');
      if (answer.status !== 200) throw refusal(description, answer);
      return answer.text.split('\n').find((pseudonym) => pseudonym !== '' && matches(pseudonym));
    },

    async close() {
      agent.destroy();
    },
  };
}

/** The vault service could not be reached, or refused this server's certificate. */
function unreachable(description: string, error: Error): AppError {
  const code = (error as NodeJS.ErrnoException).code;
  return new AppError(
    'vault_unavailable',
    `Cannot reach ${description} (${code ?? error.message}). ` +
      'Start the vault service or check MEDLAKE_VAULT_URL and the client certificate, then try again.',
  );
}

/**
 * The service's own error. A pseudonym it does not know and a request it finds invalid keep
 * their meaning for the caller; anything else is the vault service failing.
 */
function refusal(description: string, answer: { status: number; text: string }): AppError {
  let body: { error?: { message?: string } } = {};
  try {
    body = JSON.parse(answer.text) as typeof body;
  } catch {
    // Not our service's error body (a proxy's page): say only what the status was.
  }
  const message = body.error?.message ?? `HTTP ${answer.status}`;
  if (answer.status === 404) return new AppError('pseudonym_not_found', message);
  if (answer.status === 400) return new AppError('invalid_input', message);
  return new AppError('vault_unavailable', `${description} failed: ${message}`);
}
