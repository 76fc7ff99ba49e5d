import path from 'node:path';
import { auditLog, type Actor } from '../audit/audit-log.ts';
import type { Env } from '../env.ts';
import { AppError } from '../errors.ts';
import { homeLayout } from '../home-layout.ts';
import { resolveSigningKey } from '../key-file.ts';
import { openPrivacySecrets, openLockedCatalog } from '../platform.ts';
import { openConfiguredVaultClient } from '../vault/configured-vault.ts';
import type { VaultClient } from '../vault/vault-client.ts';
import type { Reidentification } from '../vault/vault.ts';

/**
 * The custodian maps a pseudonym back to the real patient id. The vault keeps its own log of
 * every lookup; the catalog's audit log gets an entry too (pseudonym, custodian, reason and
 * outcome, never the real id), written before the identity is handed out, so that no
 * re-identification goes unrecorded there: without the catalog, nothing is re-identified.
 */
export async function reidentifyPatient(
  env: Env,
  request: {
    pseudonym: string;
    /** The holder whose own pseudonym this is (`project:ID`, `user:ID`), when it is one. */
    holder?: string;
    custodian: string;
    reason: string;
    source: string;
  },
): Promise<Reidentification> {
  if (request.reason.trim().length < 5) {
    throw new AppError('invalid_input', 'Give a reason of at least a few words');
  }
  const catalog = await openLockedCatalog(env);
  try {
    const audit = auditLog(
      catalog.db,
      await resolveSigningKey(
        env.MEDLAKE_AUDIT_SECRET,
        path.join(homeLayout(env.MEDLAKE_HOME).keys, 'audit.key'),
      ),
    );
    const actor: Actor = { userId: null, name: request.custodian, source: request.source };
    const vault = await openConfiguredVaultClient(env);
    try {
      let identity: Reidentification;
      try {
        identity = await vault.reidentify(await platformPseudonymOf(env, vault, request), request);
      } catch (error) {
        await audit.record({
          action: 'reidentify',
          actor,
          target: `pseudonym:${request.pseudonym}`,
          outcome: 'failure',
          details: {
            reason: request.reason,
            problem: (error as Error).message,
            ...(request.holder ? { holder: request.holder } : {}),
          },
        });
        throw error;
      }
      await audit.record({
        action: 'reidentify',
        actor,
        target: `pseudonym:${request.pseudonym}`,
        details: {
          reason: request.reason,
          space: identity.space,
          kind: identity.kind,
          ...(request.holder ? { holder: request.holder } : {}),
        },
      });
      return identity;
    } finally {
      await vault.close();
    }
  } finally {
    await catalog.close();
  }
}

/** The platform pseudonym behind a holder's own one; the pseudonym itself when no holder. */
async function platformPseudonymOf(
  env: Env,
  vault: VaultClient,
  request: { pseudonym: string; holder?: string },
): Promise<string> {
  if (!request.holder) return request.pseudonym;
  const secrets = await openPrivacySecrets(env);
  const holder = request.holder;
  const found = await vault.findPatientPseudonym(
    (candidate) => secrets.pseudonymFor(holder, candidate) === request.pseudonym,
  );
  if (!found) {
    throw new AppError(
      'pseudonym_not_found',
      `${holder} has no patient with the pseudonym ${request.pseudonym}`,
    );
  }
  return found;
}
