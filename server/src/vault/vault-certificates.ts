import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import { isIP } from 'node:net';
import path from 'node:path';
import forge from 'node-forge';
import { AppError } from '../errors.ts';

/** The files `medlake vault certs` writes, and the vault service and servers read. */
export const vaultCertificateFiles = {
  caCert: 'ca.crt',
  caKey: 'ca.key',
  serverCert: 'server.crt',
  serverKey: 'server.key',
  clientCert: 'client.crt',
  clientKey: 'client.key',
} as const;

type Pair = { cert: forge.pki.Certificate; key: forge.pki.rsa.PrivateKey };

const day = 24 * 60 * 60 * 1000;

/**
 * Makes a certificate authority for one deployment, a server certificate for the vault service
 * (valid for `hosts` and the loopback names) and a client certificate for the medlake servers,
 * both signed by that authority. The vault service accepts only clients whose certificate the
 * authority signed, so the authority's key (ca.key) belongs offline once the two are made.
 * Existing files are never overwritten: a new authority would lock out every server.
 */
export async function makeVaultCertificates(
  directory: string,
  options: { hosts: readonly string[] },
): Promise<string[]> {
  const files = Object.values(vaultCertificateFiles).map((name) => path.join(directory, name));
  const existing = files.filter((file) => existsSync(file));
  if (existing.length > 0) {
    throw new AppError(
      'already_exists',
      `${existing.join(', ')} already exist; move them away to make new certificates`,
    );
  }
  const ca = newPair();
  ca.cert.setSubject([{ name: 'commonName', value: 'medlake vault CA' }]);
  ca.cert.setIssuer(ca.cert.subject.attributes);
  validFor(ca.cert, 3650);
  ca.cert.setExtensions([
    { name: 'basicConstraints', cA: true, critical: true },
    { name: 'keyUsage', keyCertSign: true, cRLSign: true, critical: true },
    { name: 'subjectKeyIdentifier' },
  ]);
  ca.cert.sign(ca.key, forge.md.sha256.create());

  const hosts = [...new Set(['localhost', '127.0.0.1', '::1', ...options.hosts])];
  const server = signedBy(ca, 'medlake vault service', [
    { name: 'extKeyUsage', serverAuth: true },
    {
      name: 'subjectAltName',
      altNames: hosts.map((host) =>
        isIP(host) ? { type: 7, ip: host } : { type: 2, value: host },
      ),
    },
  ]);
  const client = signedBy(ca, 'medlake server', [{ name: 'extKeyUsage', clientAuth: true }]);

  await mkdir(directory, { recursive: true, mode: 0o700 });
  const pem = forge.pki.certificateToPem;
  const keyPem = forge.pki.privateKeyToPem;
  const contents: Record<keyof typeof vaultCertificateFiles, string> = {
    caCert: pem(ca.cert),
    caKey: keyPem(ca.key),
    serverCert: pem(server.cert),
    serverKey: keyPem(server.key),
    clientCert: pem(client.cert),
    clientKey: keyPem(client.key),
  };
  for (const [name, text] of Object.entries(contents)) {
    const file = path.join(directory, vaultCertificateFiles[name as keyof typeof contents]);
    // Keys are readable by their owner only; certificates are public.
    await writeFile(file, text, { mode: name.endsWith('Key') ? 0o600 : 0o644, flag: 'wx' });
  }
  return files;
}

function newPair(): Pair {
  // Node makes the key natively (forge's own RSA key generation is slow JavaScript).
  const { privateKey } = generateKeyPairSync('rsa', {
    modulusLength: 2048,
    privateKeyEncoding: { type: 'pkcs1', format: 'pem' },
    publicKeyEncoding: { type: 'spki', format: 'pem' },
  });
  const key = forge.pki.privateKeyFromPem(privateKey);
  const cert = forge.pki.createCertificate();
  cert.publicKey = forge.pki.setRsaPublicKey(key.n, key.e);
  // A positive random serial: the top bit cleared so DER does not read it as negative.
  const serial = randomBytes(16);
  serial[0] = (serial[0] ?? 0) & 0x7f;
  cert.serialNumber = serial.toString('hex');
  return { cert, key };
}

function validFor(cert: forge.pki.Certificate, days: number): void {
  // An hour back, so that a host whose clock is a little behind accepts it at once.
  cert.validity.notBefore = new Date(Date.now() - 60 * 60 * 1000);
  cert.validity.notAfter = new Date(Date.now() + days * day);
}

function signedBy(ca: Pair, commonName: string, extensions: object[]): Pair {
  const pair = newPair();
  pair.cert.setSubject([{ name: 'commonName', value: commonName }]);
  pair.cert.setIssuer(ca.cert.subject.attributes);
  validFor(pair.cert, 825);
  pair.cert.setExtensions([
    { name: 'basicConstraints', cA: false },
    { name: 'keyUsage', digitalSignature: true, keyEncipherment: true, critical: true },
    ...extensions,
  ]);
  pair.cert.sign(ca.key, forge.md.sha256.create());
  return pair;
}
