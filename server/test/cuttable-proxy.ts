import { createServer, connect, type Socket } from 'node:net';

export type CuttableProxy = {
  /** http://127.0.0.1:PORT, to use in place of the target's URL. */
  url: string;
  port: number;
  /** The target goes away: open connections are reset, new ones are closed at once. */
  cut(): void;
  /** The target is back. */
  restore(): void;
  /** Cuts as soon as a client sends anything after this call: in the middle of what it does. */
  cutOnNextRequest(): void;
  close(): Promise<void>;
};

/**
 * A TCP relay in front of a real service (the S3 server, Spark Connect), so that a test can make
 * that service go away and come back mid-operation without stopping the one the other tests
 * share. It forwards bytes untouched: signatures over the Host header stay valid because the
 * client signs for the relay's address.
 */
export async function startCuttableProxy(target: string): Promise<CuttableProxy> {
  const { hostname, port: targetPort } = new URL(target);
  const sockets = new Set<Socket>();
  let down = false;
  let armed = false;
  const cut = () => {
    down = true;
    armed = false;
    for (const socket of sockets) socket.resetAndDestroy();
    sockets.clear();
  };
  const server = createServer((client) => {
    if (down) {
      client.resetAndDestroy();
      return;
    }
    const upstream = connect(Number(targetPort), hostname);
    sockets.add(client);
    sockets.add(upstream);
    const forget = () => {
      sockets.delete(client);
      sockets.delete(upstream);
      client.destroy();
      upstream.destroy();
    };
    client.on('error', forget).on('close', forget);
    upstream.on('error', forget).on('close', forget);
    client.on('data', () => {
      if (armed) cut();
    });
    client.pipe(upstream);
    upstream.pipe(client);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  if (typeof address !== 'object' || !address) throw new Error('the proxy has no address');
  return {
    url: `http://127.0.0.1:${address.port}`,
    port: address.port,
    cut,
    restore() {
      down = false;
      armed = false;
    },
    cutOnNextRequest() {
      armed = true;
    },
    close: () =>
      new Promise((resolve) => {
        cut();
        server.close(() => resolve());
      }),
  };
}
