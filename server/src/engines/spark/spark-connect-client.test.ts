import net from 'node:net';
import { fileURLToPath } from 'node:url';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { testSparkUrl } from '../../../test/spark.ts';
import { AppError } from '../../errors.ts';
import { parseConnectUrl, type ConnectTarget } from './connect-url.ts';
import { SparkConnectClient } from './spark-connect-client.ts';

const plain = (value: unknown) => (typeof value === 'bigint' ? Number(value) : value);

describe('the Spark Connect client, against a real Spark Connect server', () => {
  let target: ConnectTarget;
  let client: SparkConnectClient;

  beforeAll(() => {
    target = parseConnectUrl(testSparkUrl());
    client = new SparkConnectClient(target);
  });

  afterAll(async () => {
    await client?.close();
  });

  it('binds named parameters as values, never as SQL', async () => {
    const hostile = "x' OR '1'='1'; DROP TABLE t; --";
    const table = await client.sql(
      'SELECT :text AS text, :whole + 1 AS next, :fraction * 2 AS twice, array_contains(:codes, :code) AS listed, :missing IS NULL AS missing',
      {
        text: hostile,
        whole: 41,
        fraction: 1.25,
        codes: ['2339-0', '4548-4'],
        code: '4548-4',
        missing: null,
      },
    );
    const [row] = table.toArray().map((item) => item.toJSON());
    expect(row).toMatchObject({ text: hostile, twice: 2.5, listed: true, missing: true });
    expect(plain(row!.next)).toBe(42);
  });

  it('reads a result of many Arrow batches whole', async () => {
    const table = await client.sql('SELECT id, id * 2 AS twice FROM range(250000)');
    expect(table.numRows).toBe(250_000);
    const twice = table.getChild('twice')!;
    expect(plain(twice.get(249_999))).toBe(499_998);
  });

  it('explains a failed statement with Spark’s own message', async () => {
    const failure = await client.sql('SELECT no_such_column FROM range(1)').catch((error) => error);
    expect(failure).toBeInstanceOf(AppError);
    expect((failure as AppError).message).toMatch(/UNRESOLVED_COLUMN.*no_such_column/);
  });

  it('interrupts a running statement when its signal aborts', async () => {
    const controller = new AbortController();
    setTimeout(() => controller.abort(), 1000);
    const failure = await client
      .sql('SELECT count(*) FROM range(1000000000000L)', {}, { signal: controller.signal })
      .catch((error) => error);
    // The count of a trillion rows would run for hours: ending at all means Spark stopped it.
    expect((failure as AppError).message).toBe('The query was stopped');
    // The session is still usable after the interruption.
    expect((await client.sql('SELECT 1 AS one')).numRows).toBe(1);
  });

  it('picks a result stream up again after the connection breaks in the middle', async () => {
    // A proxy that cuts the first connection once it has passed some of the result.
    let connections = 0;
    const proxy = net.createServer((socket) => {
      connections += 1;
      const upstream = net.connect(target.port, target.host);
      let passed = 0;
      const cutAfter = connections === 1 ? 256 * 1024 : Infinity;
      upstream.on('data', (chunk: Buffer) => {
        passed += chunk.length;
        if (passed > cutAfter) {
          socket.destroy();
          upstream.destroy();
        } else socket.write(chunk);
      });
      socket.on('data', (chunk) => upstream.write(chunk));
      socket.on('error', () => upstream.destroy());
      upstream.on('error', () => socket.destroy());
      socket.on('close', () => upstream.destroy());
    });
    await new Promise<void>((resolve) => proxy.listen(0, '127.0.0.1', resolve));
    const port = (proxy.address() as net.AddressInfo).port;
    const viaProxy = new SparkConnectClient({ ...target, host: '127.0.0.1', port });
    try {
      const table = await viaProxy.sql("SELECT id, repeat('x', 20) AS pad FROM range(400000)");
      expect(table.numRows).toBe(400_000);
      const ids = table.getChild('id')!;
      expect(plain(ids.get(0))).toBe(0);
      expect(plain(ids.get(399_999))).toBe(399_999);
      expect(connections).toBeGreaterThan(1);
    } finally {
      await viaProxy.close();
      proxy.close();
    }
  });

  it('says clearly when no server answers', async () => {
    const nowhere = new SparkConnectClient({ ...target, host: '127.0.0.1', port: 1 });
    try {
      const failure = await nowhere.sql('SELECT 1').catch((error) => error);
      expect((failure as AppError).code).toBe('engine_unavailable');
      expect((failure as AppError).message).toMatch(/cannot be reached/);
    } finally {
      await nowhere.close();
    }
  });
});

describe('the Spark Connect client’s headers', () => {
  it('sends the URL’s x- options as headers with every call', async () => {
    // Spark ignores headers it does not use, so a listener stands in for the cluster's
    // gateway (Databricks reads x-databricks-cluster-id) and records what arrives.
    const definition = protoLoader.loadSync('spark-connect.proto', {
      includeDirs: [fileURLToPath(new URL('./proto/', import.meta.url))],
    });
    const service = (
      grpc.loadPackageDefinition(definition) as unknown as {
        spark: { connect: { SparkConnectService: grpc.ServiceClientConstructor } };
      }
    ).spark.connect.SparkConnectService.service;
    const seen: string[] = [];
    const server = new grpc.Server();
    const refuse = (call: { metadata: grpc.Metadata }, fail: (error: object) => void) => {
      seen.push(String(call.metadata.get('x-databricks-cluster-id')[0]));
      fail({ code: grpc.status.UNIMPLEMENTED, details: 'a listener only' });
    };
    server.addService(service, {
      ExecutePlan: (call: grpc.ServerWritableStream<object, object>) =>
        refuse(call, (error) => call.emit('error', error)),
      ReleaseSession: (
        call: grpc.ServerUnaryCall<object, object>,
        done: grpc.sendUnaryData<object>,
      ) => refuse(call, (error) => done(error as grpc.ServiceError)),
    });
    const port = await new Promise<number>((resolve, reject) =>
      server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (error, bound) =>
        error ? reject(error) : resolve(bound),
      ),
    );
    try {
      const client = new SparkConnectClient(
        parseConnectUrl(`sc://127.0.0.1:${port}/;x-databricks-cluster-id=0123-abc`),
      );
      await expect(client.sql('SELECT 1')).rejects.toThrow();
      await client.close();
      expect(seen).toEqual(['0123-abc', '0123-abc']);
    } finally {
      server.forceShutdown();
    }
  });
});
