import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { createLogger } from '../src/logger.ts';
import { vaultCertificateFiles } from '../src/vault/vault-certificates.ts';
import { buildVaultService } from '../src/vault/vault-service.ts';
import type { Vault } from '../src/vault/vault.ts';

export type TestVaultService = Awaited<ReturnType<typeof buildVaultService>>;

/**
 * The vault service over mutual TLS on a free port of 127.0.0.1, with the certificates that
 * makeVaultCertificates wrote to `certs`; its log lines go to `log`.
 */
export async function startVaultService(
  vault: Vault,
  certs: string,
  log: string[],
): Promise<{ service: TestVaultService; port: number }> {
  const read = (name: string) => readFile(path.join(certs, name), 'utf8');
  const service = await buildVaultService({
    vault,
    tls: {
      ca: await read(vaultCertificateFiles.caCert),
      cert: await read(vaultCertificateFiles.serverCert),
      key: await read(vaultCertificateFiles.serverKey),
    },
    logger: createLogger('info', { write: (line: string) => void log.push(line) }),
  });
  await service.listen({ host: '127.0.0.1', port: 0 });
  const address = service.server.address();
  return { service, port: typeof address === 'object' && address ? address.port : 0 };
}
