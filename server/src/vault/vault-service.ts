import type { TLSSocket } from 'node:tls';
import Fastify, { type FastifyRequest } from 'fastify';
import {
  serializerCompiler,
  validatorCompiler,
  type ZodTypeProvider,
} from 'fastify-type-provider-zod';
import { z } from 'zod';
import { handleError } from '../error-handler.ts';
import type { Logger } from '../logger.ts';
import type { Vault } from './vault.ts';

/** The TLS material of the vault service, as PEM text. */
export type VaultServiceTls = { ca: string; cert: string; key: string };

/**
 * Ingest sends 50,000 distinct ids a batch (ingest-pipeline.ts), each a few dozen bytes: a
 * few MB. Twice that many ids, and 16 MiB, leave room without letting one request hold the
 * service's memory: a 64 MiB batch of a million ids once took it to 1.7 GB, and every id
 * accepted also stays in the vault for good.
 */
export const maxBatchIds = 100_000;
const bodyLimit = 16 * 1024 * 1024;

const scopeSchema = z.object({
  space: z.string().min(1).max(200),
  kind: z.string().min(1).max(50),
});

const pseudonymizeBody = scopeSchema.extend({
  ids: z.array(z.string().max(1000)).max(maxBatchIds),
});

const reidentifyBody = z.object({
  pseudonym: z.string().min(1).max(200),
  // Trimmed first: five spaces are no reason, as the CLI already says for its own callers.
  custodian: z.string().trim().min(1).max(200),
  reason: z.string().trim().min(5).max(2000),
  /** Where the request came from on the server's side (host, CLI user), for the vault's log. */
  source: z.string().max(500).optional(),
});

/**
 * `medlake vault serve`: the vault and its key on a host of their own, behind mutual TLS. Only
 * clients whose certificate the deployment's CA signed get past the handshake; nothing else
 * reaches a route. The API is as narrow as ingest and the custodian need: a batch of ids to
 * pseudonyms and date shifts, a re-identification with a reason, the linkage secret, and the
 * list of patient pseudonyms for tracing a holder's own pseudonym back.
 */
export async function buildVaultService(options: {
  vault: Vault;
  tls: VaultServiceTls;
  logger: Logger;
}) {
  const { vault } = options;
  const app = Fastify({
    loggerInstance: options.logger,
    bodyLimit,
    https: {
      ...options.tls,
      // Refused in the handshake: a client without a certificate of this CA sends no request.
      requestCert: true,
      rejectUnauthorized: true,
      minVersion: 'TLSv1.2',
    },
  }).withTypeProvider<ZodTypeProvider>();
  app.setValidatorCompiler(validatorCompiler);
  app.setSerializerCompiler(serializerCompiler);
  app.setErrorHandler(handleError);

  app.get('/v1/health', async () => ({ status: 'ok' as const }));

  app.get('/v1/linkage-key', async (request) => {
    request.log.info({ client: clientName(request) }, 'vault: linkage secret handed out');
    return { linkageKey: vault.linkageKey };
  });

  app.post('/v1/pseudonyms', { schema: { body: pseudonymizeBody } }, async (request) => {
    const { space, kind, ids } = request.body;
    const entries = vault.pseudonymize({ space, kind }, ids);
    // In the order of the ids sent, so that no real id travels back.
    const answer = ids.map((id) => {
      const entry = entries.get(id);
      if (!entry) throw new Error('the vault returned no pseudonym for an id of the batch');
      return [entry.pseudonym, entry.shiftDays] as const;
    });
    request.log.info(
      { client: clientName(request), space, kind, ids: ids.length },
      'vault: pseudonymized a batch',
    );
    return { entries: answer };
  });

  app.post('/v1/reidentifications', { schema: { body: reidentifyBody } }, async (request) => {
    const { pseudonym, custodian, reason, source } = request.body;
    // The vault's own log (its reidentifications table) records the request, found or not;
    // this line records it in the service's log too, never with the real id.
    request.log.info(
      { client: clientName(request), pseudonym, custodian, reason, source },
      'vault: re-identification requested',
    );
    // The vault's own table keeps who asked through which certificate, as the log does.
    const origin = [`certificate ${clientName(request) ?? '?'}`, source].filter(Boolean);
    return vault.reidentify(pseudonym, { custodian, reason, source: origin.join(', ') });
  });

  app.get('/v1/patient-pseudonyms', async (request, reply) => {
    const pseudonyms: string[] = [];
    vault.findPatientPseudonym((pseudonym) => {
      pseudonyms.push(pseudonym);
      return false;
    });
    request.log.info(
      { client: clientName(request), pseudonyms: pseudonyms.length },
      'vault: patient pseudonyms listed',
    );
    return reply.type('text/plain').send(pseudonyms.join('\n'));
  });

  return app;
}

/** The common name of the client's certificate, for the service's log. */
function clientName(request: FastifyRequest): string | undefined {
  const socket = request.raw.socket as TLSSocket;
  const subject = socket.getPeerCertificate?.().subject as { CN?: string } | undefined;
  return subject?.CN;
}
