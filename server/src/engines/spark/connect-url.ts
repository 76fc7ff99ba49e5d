import { AppError } from '../../errors.ts';

/** Where a Spark Connect server is and how to reach it, from an `sc://` URL. */
export type ConnectTarget = {
  host: string;
  port: number;
  /** A bearer token, for clusters that ask for one (Databricks Connect style). */
  token: string | null;
  useSsl: boolean;
  /** The user the session belongs to on the server; medlake's service user by default. */
  userId: string;
  /**
   * Headers sent with every call: the URL's `x-…` options, such as Databricks'
   * `x-databricks-cluster-id`.
   */
  headers: Record<string, string>;
};

const defaultPort = 15002;

/**
 * Reads `sc://host:port/;token=...;use_ssl=true;user_id=...`, the form Spark Connect clients
 * share. A token is only ever sent over TLS: `token` without `use_ssl=true` turns TLS on, as
 * the other clients do.
 */
export function parseConnectUrl(url: string): ConnectTarget {
  const match = /^sc:\/\/([^/:;]+)(?::(\d+))?\/?(;.*)?$/.exec(url.trim());
  if (!match) {
    throw new AppError(
      'invalid_input',
      'SPARK_CONNECT_URL must look like sc://host:15002 (optionally /;token=...;use_ssl=true;x-header=...)',
    );
  }
  const [, host, port, rest] = match;
  const options = new Map<string, string>();
  for (const part of (rest ?? '').split(';').filter(Boolean)) {
    const [key, ...value] = part.split('=');
    options.set(decodeURIComponent(key!).toLowerCase(), decodeURIComponent(value.join('=')));
  }
  const known = new Set(['token', 'use_ssl', 'user_id']);
  // Other clients send every other option as a header; medlake takes only `x-` ones as
  // headers, so that a misspelt option is an error rather than a header nobody reads.
  const isHeader = (key: string) => /^x-[a-z0-9-]+$/.test(key);
  const unknown = [...options.keys()].filter((key) => !known.has(key) && !isHeader(key));
  if (unknown.length > 0) {
    throw new AppError(
      'invalid_input',
      `SPARK_CONNECT_URL has options medlake does not know: ${unknown.join(', ')}`,
    );
  }
  const token = options.get('token') || null;
  return {
    host: host!,
    port: port ? Number(port) : defaultPort,
    token,
    useSsl: options.get('use_ssl') === 'true' || token !== null,
    userId: options.get('user_id') || 'medlake',
    headers: Object.fromEntries([...options].filter(([key]) => isHeader(key))),
  };
}
