import {
  createPrivateKey,
  createPublicKey,
  generateKeyPairSync,
  sign,
  verify,
  type KeyObject,
} from 'node:crypto';
import { existsSync } from 'node:fs';
import { chmod, mkdir, readdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';

/** A signed note of the audit chain's head at one moment: its last entry's number and hash. */
export type AuditCheckpoint = { seq: number; hash: string; at: string; signature: string };

/** How the chain compares with the checkpoints taken of it. */
export type CheckpointCheck =
  | { ok: true; checkpoints: number; last: { seq: number; at: string } | null }
  | {
      ok: false;
      checkpoints: number;
      /** The first entry after the last checkpoint that still matches. */
      firstBad: number;
      problem: string;
    };

const keyFile = 'checkpoint-signing.key';
const publicKeyFile = 'checkpoint-signing.pub';
const namePattern = /^checkpoint-(\d{12})\.json$/;

const signedText = (checkpoint: Omit<AuditCheckpoint, 'signature'>) =>
  Buffer.from(`medlake audit checkpoint\n${checkpoint.seq}\n${checkpoint.hash}\n${checkpoint.at}`);

/**
 * Checkpoints of the audit chain's head, each signed with Ed25519 and written to a directory
 * outside MEDLAKE_HOME: the catalog and every key under MEDLAKE_HOME/keys are not enough to
 * rewrite the log unnoticed, since a re-signed chain no longer ends in the hashes noted here.
 * One file per checkpoint, created exclusively, so that servers sharing the directory never
 * overwrite each other's; the signing key is generated into the directory on first use.
 */
export async function openAuditCheckpoints(directory: string) {
  await mkdir(directory, { recursive: true, mode: 0o700 });
  const privateKey = await loadOrCreateKey(directory);
  const publicKey = createPublicKey(privateKey);
  let lastWritten = 0;

  const readAll = async (): Promise<AuditCheckpoint[]> => {
    const names = (await readdir(directory)).filter((name) => namePattern.test(name)).sort();
    const checkpoints: AuditCheckpoint[] = [];
    for (const name of names) {
      try {
        checkpoints.push(
          JSON.parse(await readFile(path.join(directory, name), 'utf8')) as AuditCheckpoint,
        );
      } catch {
        checkpoints.push({
          seq: Number(namePattern.exec(name)?.[1]),
          hash: '',
          at: '',
          signature: '',
        });
      }
    }
    return checkpoints;
  };

  return {
    directory,
    /** The key that verifies checkpoints, PEM (SPKI): an operator may note it elsewhere. */
    publicKeyPem: publicKey.export({ type: 'spki', format: 'pem' }).toString(),

    /**
     * Notes the head, unless a checkpoint of it (or of a later entry) exists. Call it only
     * with a head read after its entries were committed.
     */
    async write(head: { seq: number; hash: string } | null, now = new Date()): Promise<boolean> {
      if (!head || head.seq <= lastWritten) return false;
      const unsigned = { seq: head.seq, hash: head.hash, at: now.toISOString() };
      const checkpoint: AuditCheckpoint = {
        ...unsigned,
        signature: sign(null, signedText(unsigned), privateKey).toString('base64'),
      };
      const file = path.join(directory, `checkpoint-${String(head.seq).padStart(12, '0')}.json`);
      try {
        await writeFile(file, `${JSON.stringify(checkpoint)}\n`, { flag: 'wx', mode: 0o600 });
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
      }
      lastWritten = head.seq;
      return true;
    },

    /**
     * Compares the chain with every checkpoint, oldest first. `hashesAt` gives the chain's
     * hashes at the checkpoints' entry numbers (absent: no such entry). The first checkpoint
     * that is forged or no longer matches is the point from which the log cannot be trusted:
     * what lies after the checkpoint before it.
     */
    async check(
      hashesAt: (seqs: number[]) => Promise<Map<number, string>>,
    ): Promise<CheckpointCheck> {
      const checkpoints = await readAll();
      const hashes = await hashesAt(checkpoints.map((checkpoint) => checkpoint.seq));
      let last: AuditCheckpoint | null = null;
      for (const checkpoint of checkpoints) {
        const after = (last?.seq ?? 0) + 1;
        const bad = (problem: string): CheckpointCheck => ({
          ok: false,
          checkpoints: checkpoints.length,
          firstBad: after,
          problem,
        });
        if (!verifySignature(checkpoint, publicKey)) {
          return bad(
            `the checkpoint of entry ${checkpoint.seq} is not signed by the checkpoint key`,
          );
        }
        const hash = hashes.get(checkpoint.seq);
        if (hash === undefined) {
          return bad(
            `entry ${checkpoint.seq}, noted in the checkpoint of ${checkpoint.at}, is missing (deleted)`,
          );
        }
        if (hash !== checkpoint.hash) {
          return bad(
            `entries ${after}–${checkpoint.seq} differ from the checkpoint of ${checkpoint.at} (the chain was rewritten)`,
          );
        }
        last = checkpoint;
      }
      return {
        ok: true,
        checkpoints: checkpoints.length,
        last: last && { seq: last.seq, at: last.at },
      };
    },
  };
}

export type AuditCheckpoints = Awaited<ReturnType<typeof openAuditCheckpoints>>;

function verifySignature(checkpoint: AuditCheckpoint, publicKey: KeyObject): boolean {
  if (!Number.isInteger(checkpoint.seq) || typeof checkpoint.hash !== 'string') return false;
  try {
    return verify(
      null,
      signedText(checkpoint),
      publicKey,
      Buffer.from(String(checkpoint.signature), 'base64'),
    );
  } catch {
    return false;
  }
}

async function loadOrCreateKey(directory: string): Promise<KeyObject> {
  const file = path.join(directory, keyFile);
  if (!existsSync(file)) {
    const { privateKey, publicKey } = generateKeyPairSync('ed25519');
    try {
      await writeFile(file, privateKey.export({ type: 'pkcs8', format: 'pem' }), {
        flag: 'wx',
        mode: 0o600,
      });
      await writeFile(
        path.join(directory, publicKeyFile),
        publicKey.export({ type: 'spki', format: 'pem' }),
      );
    } catch (error) {
      // Another process made it first: its key is the one.
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
    }
  }
  await chmod(file, 0o600);
  return createPrivateKey(await readFile(file, 'utf8'));
}
