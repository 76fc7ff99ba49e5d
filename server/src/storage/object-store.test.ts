import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { text } from 'node:stream/consumers';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { testBucket } from '../../test/s3.ts';
import { createLocalObjectStore } from './local/local-object-store.ts';
import type { ObjectStore } from './object-store.ts';
import { copyObject } from './s3/s3-copy.ts';
import { createS3ObjectStore } from './s3/s3-object-store.ts';

type Made = {
  store: ObjectStore;
  located: (key: string) => string;
  /** Writes a file as an engine would, beside the store, under a name that is not a key. */
  putForeign(folder: string, name: string): Promise<void>;
  dispose(): Promise<void>;
};

const stores: Array<[string, (scratch: string) => Promise<Made>]> = [
  [
    'local disk',
    async (scratch) => {
      const root = path.join(scratch, 'objects');
      return {
        store: createLocalObjectStore(root),
        located: (key) => path.join(root, ...key.split('/')),
        putForeign: async (folder, name) => {
          await mkdir(path.join(root, folder), { recursive: true });
          await writeFile(path.join(root, folder, name), '');
        },
        dispose: async () => undefined,
      };
    },
  ],
  [
    'S3',
    async () => {
      const bucket = await testBucket();
      return {
        store: createS3ObjectStore(bucket.settings),
        located: (key) => `s3://${bucket.settings.bucket}/medlake/${key}`,
        putForeign: async (folder, name) => {
          const client = new S3Client({ ...bucket.settings });
          await client.send(
            new PutObjectCommand({
              Bucket: bucket.settings.bucket,
              Key: `medlake/${folder}/${name}`,
              Body: '',
            }),
          );
          client.destroy();
        },
        dispose: () => bucket.drop(),
      };
    },
  ],
];

/** What every object store must do, run against each of them. */
describe.each(stores)('object store on %s', (_, make) => {
  let scratch: string;
  let made: Made;
  let store: ObjectStore;

  beforeEach(async () => {
    scratch = await mkdtemp(path.join(tmpdir(), 'medlake-store-'));
    made = await make(scratch);
    store = made.store;
  });

  afterEach(async () => {
    await made?.dispose();
    await rm(scratch, { recursive: true, force: true });
  });

  it('writes and reads back strings, bytes and streams', async () => {
    await store.put('lake/a.txt', 'alpha');
    await store.put('lake/b.bin', new Uint8Array([1, 2, 3]));
    await store.put('lake/c.txt', Readable.from(['str', 'eam']));

    expect(await text(await store.get('lake/a.txt'))).toBe('alpha');
    expect([...Buffer.concat(await (await store.get('lake/b.bin')).toArray())]).toEqual([1, 2, 3]);
    expect(await text(await store.get('lake/c.txt'))).toBe('stream');
  });

  it('moves an object to another key, replacing what was there', async () => {
    await store.put('results/q1/staging/part-00000.csv', 'new');
    await store.put('results/q1/export.csv', 'old');
    await store.move('results/q1/staging/part-00000.csv', 'results/q1/export.csv');
    expect(await text(await store.get('results/q1/export.csv'))).toBe('new');
    expect(await store.exists('results/q1/staging/part-00000.csv')).toBe(false);
    await expect(store.move('results/q1/missing', 'results/q1/other')).rejects.toMatchObject({
      code: 'object_not_found',
    });
  });

  it('deletes a folder with what an engine left in it, and nothing beside it', async () => {
    await store.put('results/q1/out.spark/part-00000.parquet', 'x');
    await made.putForeign('results/q1/out.spark', '_SUCCESS');
    await made.putForeign('results/q1/out.spark', '.part-00000.parquet.crc');
    await store.put('results/q1/out.sparkle', 'kept');
    await store.deleteFolder('results/q1/out.spark');
    expect(await store.list('results/')).toEqual(['results/q1/out.sparkle']);
    await store.deleteFolder('results/q1/never-there');
  });

  it('tags content: the same bytes the same tag, other bytes another', async () => {
    await store.put('landing/a.csv', 'a,b\n1,2\n');
    await store.put('landing/b.csv', 'a,b\n1,2\n');
    await store.put('landing/c.csv', 'a,b\n1,3\n');
    const tag = await store.contentTag('landing/a.csv');
    expect(await store.contentTag('landing/b.csv')).toBe(tag);
    expect(await store.contentTag('landing/c.csv')).not.toBe(tag);
    await expect(store.contentTag('landing/none.csv')).rejects.toMatchObject({
      code: 'object_not_found',
    });
  });

  it('gives back the key of a location, and none for a place outside the store', async () => {
    const key = 'lake/d/hospital=h1/month=2024-01/release=r1/part-0.parquet';
    expect(store.keyOf(store.locate(key))).toBe(key);
    expect(store.keyOf('/somewhere/else/part-0.parquet')).toBeUndefined();
    expect(store.keyOf('s3://another-bucket/medlake/lake/x')).toBeUndefined();
  });

  it('copies a local file in as an object, and locates it for the engines', async () => {
    const file = path.join(scratch, 'outside.csv');
    await writeFile(file, 'a,b\n1,2\n');
    await store.putFile('landing/job-1.csv', file);
    expect(await text(await store.get('landing/job-1.csv'))).toBe('a,b\n1,2\n');
    expect(await store.size('landing/job-1.csv')).toBe(8);
    expect(store.locate('landing/job-1.csv')).toBe(made.located('landing/job-1.csv'));
    await expect(
      store.putFile('landing/job-2.csv', path.join(scratch, 'missing.csv')),
    ).rejects.toThrow();
    expect(await store.exists('landing/job-2.csv')).toBe(false);
  });

  it('writes a large stream whole, in parts where the store has them', async () => {
    // 20 MiB: more than one part of a multipart upload on S3.
    const chunk = Buffer.alloc(1024 * 1024, 7);
    const chunks = Array.from({ length: 20 }, (_, index) => Buffer.from(chunk.fill(index % 251)));
    await store.put('landing/large.bin', Readable.from(chunks));
    expect(await store.size('landing/large.bin')).toBe(20 * 1024 * 1024);
    const back = Buffer.concat(await (await store.get('landing/large.bin')).toArray());
    expect(back.equals(Buffer.concat(chunks))).toBe(true);
  });

  it('replaces an object whole when written again', async () => {
    await store.put('results/r.json', '{"v":1}');
    await store.put('results/r.json', '{"v":2}');
    expect(await text(await store.get('results/r.json'))).toBe('{"v":2}');
  });

  it('leaves nothing behind when the source stream fails', async () => {
    const failing = new Readable({
      read() {
        this.push('partial');
        this.destroy(new Error('connection dropped'));
      },
    });
    await expect(store.put('landing/upload.csv', failing)).rejects.toThrow('connection dropped');
    expect(await store.exists('landing/upload.csv')).toBe(false);
    expect(await store.list('')).toEqual([]);
  });

  it('lists keys under a prefix, sorted', async () => {
    await store.put('lake/ds/hospital=h2/part-0.parquet', 'x');
    await store.put('lake/ds/hospital=h1/part-0.parquet', 'x');
    await store.put('lake/other/part-0.parquet', 'x');
    await store.put('results/q/page-1.json', 'x');

    expect(await store.list('lake/ds/')).toEqual([
      'lake/ds/hospital=h1/part-0.parquet',
      'lake/ds/hospital=h2/part-0.parquet',
    ]);
    expect(await store.list('lake/ds/hospital=h1')).toEqual(['lake/ds/hospital=h1/part-0.parquet']);
    expect(await store.list('nothing/here/')).toEqual([]);
    expect(await store.list('')).toHaveLength(4);
  });

  it('counts the objects and bytes under a prefix', async () => {
    await store.put('lake/ds/a.parquet', 'abc');
    await store.put('lake/ds/b.parquet', new Uint8Array(1000));
    await store.put('results/q.parquet', 'x');
    expect(await store.usage('lake/')).toEqual({ objects: 2, bytes: 1003 });
    expect(await store.usage('landing/')).toEqual({ objects: 0, bytes: 0 });
  });

  it('answers NOT_FOUND for a missing object and deletes idempotently', async () => {
    await expect(store.get('lake/missing')).rejects.toMatchObject({ code: 'object_not_found' });
    await expect(store.size('lake/missing')).rejects.toMatchObject({ code: 'object_not_found' });
    await store.put('lake/x', 'x');
    await store.delete('lake/x');
    await store.delete('lake/x');
    expect(await store.exists('lake/x')).toBe(false);
  });

  it('refuses keys that would leave its root', async () => {
    await expect(store.put('../escape', 'x')).rejects.toThrow(/Invalid storage key/);
    await expect(store.get('lake/../../etc/passwd')).rejects.toThrow(/Invalid storage key/);
  });

  it('takes an object in parts, resumes without sending finished parts again, and completes it whole', async () => {
    const partBytes = 5 * 1024 * 1024;
    const parts = [1, 2, 3, 4].map((n) => Buffer.alloc(n === 4 ? 1000 : partBytes, n));
    const key = 'landing/large-upload.csv';
    const uploadId = await store.parts.start(key);
    const sent: number[] = [];
    const send = async (partNumber: number) => {
      const body = parts[partNumber - 1]!;
      // Where the store hands out part URLs (S3), the client writes there, with no credentials.
      const url = await store.parts.partUrl(key, uploadId, partNumber, 60);
      expect(url !== undefined).toBe(store.parts.directOrigin !== undefined);
      if (url) {
        expect(new URL(url).origin).toBe(store.parts.directOrigin);
        // Signed before the body exists, the URL must hold no checksum of it (S3 would
        // compare the real bytes with the empty body's and refuse them).
        expect(url.toLowerCase()).not.toContain('x-amz-checksum');
        expect((await fetch(url, { method: 'PUT', body })).status).toBe(200);
      } else await store.parts.put(key, uploadId, partNumber, body);
      sent.push(partNumber);
    };
    await send(1);
    await send(2);

    // The connection drops; the client asks what arrived and sends only the rest.
    const arrived = await store.parts.list(key, uploadId);
    expect(arrived.map((part) => [part.partNumber, part.bytes])).toEqual([
      [1, partBytes],
      [2, partBytes],
    ]);
    expect(await store.exists(key)).toBe(false);
    for (const partNumber of [1, 2, 3, 4]) {
      if (!arrived.some((part) => part.partNumber === partNumber)) await send(partNumber);
    }
    expect(sent).toEqual([1, 2, 3, 4]);

    await store.parts.complete(key, uploadId, await store.parts.list(key, uploadId));
    const back = Buffer.concat(await (await store.get(key)).toArray());
    expect(back.equals(Buffer.concat(parts))).toBe(true);
    expect(await store.list('')).toEqual([key]);
  });

  it('drops an aborted upload, which cannot be completed after', async () => {
    const key = 'landing/dropped.csv';
    const uploadId = await store.parts.start(key);
    await store.parts.put(key, uploadId, 1, Buffer.from('a,b\n'));
    await store.parts.abort(key, uploadId);
    expect(await store.exists(key)).toBe(false);
    // S3 forgets the upload (upload_not_found); S3Proxy lists no parts for it.
    const after = await store.parts
      .list(key, uploadId)
      .catch((error: { code?: string }) => error.code);
    expect([[], 'upload_not_found']).toContainEqual(after);
    await expect(
      store.parts.complete(key, uploadId, [{ partNumber: 1, bytes: 4, etag: 'x' }]),
    ).rejects.toThrow();
    expect(await store.list('')).toEqual([]);
  });

  it('passes its ping when usable', async () => {
    await expect(store.ping()).resolves.toBeUndefined();
    expect(await store.list('')).toEqual([]);
  });
});

describe('object store on S3, presigned downloads', () => {
  let bucket: Awaited<ReturnType<typeof testBucket>>;
  let store: ObjectStore;

  beforeEach(async () => {
    bucket = await testBucket();
    store = createS3ObjectStore(bucket.settings);
    await store.put('results/q1/export.csv', 'a,b\n1,2\n');
  });

  afterEach(async () => {
    await bucket?.drop();
  });

  it('downloads the object under its file name before expiry, without credentials', async () => {
    const url = await store.downloadUrl('results/q1/export.csv', {
      fileName: 'medlake-q1.csv',
      expiresInSeconds: 60,
    });
    const response = await fetch(url!);
    expect(response.status).toBe(200);
    expect(await response.text()).toBe('a,b\n1,2\n');
    expect(response.headers.get('content-disposition')).toBe(
      'attachment; filename="medlake-q1.csv"',
    );
  });

  it('is refused after expiry', async () => {
    const url = await store.downloadUrl('results/q1/export.csv', {
      fileName: 'q1.csv',
      expiresInSeconds: 1,
    });
    await new Promise((resolve) => setTimeout(resolve, 2500));
    expect((await fetch(url!)).status).toBe(403);
  });

  it('is refused when any character of its signature or key is changed', async () => {
    await store.put('results/q2/export.csv', 'other');
    const url = new URL(
      (await store.downloadUrl('results/q1/export.csv', {
        fileName: 'q1.csv',
        expiresInSeconds: 60,
      }))!,
    );
    const signature = url.searchParams.get('X-Amz-Signature')!;
    for (const index of [0, 31, signature.length - 1]) {
      const changed = new URL(url);
      const flipped = signature[index] === 'a' ? 'b' : 'a';
      changed.searchParams.set(
        'X-Amz-Signature',
        `${signature.slice(0, index)}${flipped}${signature.slice(index + 1)}`,
      );
      expect((await fetch(changed)).status).toBe(403);
    }
    // Another key under the same signature: another user's export.
    const otherKey = new URL(url);
    otherKey.pathname = otherKey.pathname.replace('/q1/', '/q2/');
    expect((await fetch(otherKey)).status).toBe(403);
    // A longer life than was signed.
    const longer = new URL(url);
    longer.searchParams.set('X-Amz-Expires', '604800');
    expect((await fetch(longer)).status).toBe(403);
  });

  it('is not offered by the local store, whose links the server signs itself', async () => {
    const root = await mkdtemp(path.join(tmpdir(), 'medlake-store-'));
    try {
      const local = createLocalObjectStore(root);
      await local.put('results/q1/export.csv', 'x');
      expect(
        await local.downloadUrl('results/q1/export.csv', {
          fileName: 'q.csv',
          expiresInSeconds: 60,
        }),
      ).toBeUndefined();
    } finally {
      await rm(root, { recursive: true, force: true });
    }
  });
});

describe('object store on S3, with server-side encryption', () => {
  it('asks for it on every write, single and multipart', async () => {
    // S3Proxy keeps objects unencrypted and refuses the header, which shows that it arrives
    // on each kind of write; S3 would encrypt.
    const bucket = await testBucket();
    try {
      for (const encryption of [
        { algorithm: 'AES256' as const },
        { algorithm: 'aws:kms' as const, kmsKeyId: 'alias/medlake' },
      ]) {
        const store = createS3ObjectStore({ ...bucket.settings, encryption });
        await expect(store.put('lake/small', 'x')).rejects.toThrow(/encryption/i);
        const large = Readable.from([Buffer.alloc(9 * 1024 * 1024)]);
        await expect(store.put('lake/large', large)).rejects.toThrow(/encryption/i);
      }
      expect(await createS3ObjectStore(bucket.settings).list('')).toEqual([]);
    } finally {
      await bucket.drop();
    }
  });
});

describe('object store on S3, refused', () => {
  it('fails its ping when a character of the secret is wrong: the server checks signatures', async () => {
    const bucket = await testBucket();
    try {
      const secret = bucket.settings.credentials!.secretAccessKey;
      const wrong = `${secret.slice(0, -1)}${secret.endsWith('0') ? '1' : '0'}`;
      const store = createS3ObjectStore({
        ...bucket.settings,
        credentials: { ...bucket.settings.credentials!, secretAccessKey: wrong },
      });
      await expect(store.ping()).rejects.toThrow(/signature/i);
    } finally {
      await bucket.drop();
    }
  });
});

describe('object store on S3, copies', () => {
  it('copies an object above the single-copy limit in ranges, byte for byte', async () => {
    const bucket = await testBucket();
    const client = new S3Client({ ...bucket.settings });
    try {
      const store = createS3ObjectStore(bucket.settings);
      const bytes = Buffer.alloc(12 * 1024 * 1024);
      for (let i = 0; i < bytes.length; i += 4096) bytes.writeUInt32BE(i, i);
      await store.put('results/q1/big', Readable.from([bytes]));
      // Limits scaled down from S3's 5 GiB, so that three ranges are copied.
      await copyObject(
        client,
        {
          bucket: bucket.settings.bucket,
          from: 'medlake/results/q1/big',
          to: 'medlake/results/q1/copy',
          bytes: bytes.length,
          encryption: {},
        },
        { largestSingleCopy: 5 * 1024 * 1024, partBytes: 5 * 1024 * 1024 },
      );
      const copied = Buffer.concat(await (await store.get('results/q1/copy')).toArray());
      expect(copied.equals(bytes)).toBe(true);
    } finally {
      client.destroy();
      await bucket.drop();
    }
  });
});
