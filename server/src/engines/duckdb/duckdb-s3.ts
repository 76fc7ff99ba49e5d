import type { DuckDBConnection } from '@duckdb/node-api';
import { UnavailableError } from '../../errors.ts';
import { isUnreachableFromDuckDb, unreachableStoreError } from '../../storage/s3/s3-unreachable.ts';
import type { S3Access } from '../../storage/object-store.ts';
import { quoteLiteral } from './duckdb-sql.ts';

export type DuckDbS3Options = {
  access: S3Access;
  /** Where httpfs was installed; DuckDB's own ~/.duckdb/extensions when absent. */
  extensionDirectory?: string;
};

/** The S3 options of an engine's options, when it has any. */
export function s3Options(
  access: S3Access,
  options: { extensionDirectory?: string | undefined },
): DuckDbS3Options {
  return {
    access,
    ...(options.extensionDirectory ? { extensionDirectory: options.extensionDirectory } : {}),
  };
}

/** Credentials are renewed this long before they expire. */
const renewBeforeMs = 5 * 60_000;

/**
 * DuckDB's way to S3: the httpfs extension, loaded from disk (never fetched: autoinstall stays
 * off) before the instance is locked down, and one secret with the store's endpoint and
 * credentials. Temporary credentials (a role's) are put in again shortly before they expire.
 */
export class DuckDbS3 {
  readonly #options: DuckDbS3Options;
  #expiresAt: number | undefined;

  private constructor(options: DuckDbS3Options) {
    this.#options = options;
  }

  /** Loads httpfs and sets the secret; rejects with a clear message when httpfs is missing. */
  static async open(connection: DuckDBConnection, options: DuckDbS3Options): Promise<DuckDbS3> {
    if (options.extensionDirectory) {
      await connection.run(`SET extension_directory = ${quoteLiteral(options.extensionDirectory)}`);
    }
    try {
      await connection.run('LOAD httpfs');
    } catch {
      const where = options.extensionDirectory ?? '~/.duckdb/extensions';
      throw new UnavailableError(
        'store_unavailable',
        `The DuckDB engine cannot reach the S3 store: DuckDB's httpfs extension is not installed in ${where}. ` +
          'Install it with `npm run install:httpfs` (and set MEDLAKE_DUCKDB_EXTENSIONS to its folder), ' +
          'or use MEDLAKE_ENGINE=spark; see docs/operations/s3.md',
      );
    }
    const s3 = new DuckDbS3(options);
    await s3.#putSecret(connection);
    return s3;
  }

  /**
   * A statement's failure as the store's own message when S3 did not answer: DuckDB's names
   * the object's URL, and the user can act only on "the store cannot be reached".
   */
  explain(error: unknown): unknown {
    if (!isUnreachableFromDuckDb(error)) return error;
    const { access } = this.#options;
    return unreachableStoreError(access.endpoint ?? `S3 (${access.region})`, 'from DuckDB');
  }

  /** Puts fresh credentials in when the current ones are about to expire. */
  async renewIfDue(connection: DuckDBConnection): Promise<void> {
    if (this.#expiresAt !== undefined && this.#expiresAt - Date.now() < renewBeforeMs) {
      await this.#putSecret(connection);
    }
  }

  async #putSecret(connection: DuckDBConnection): Promise<void> {
    const { access } = this.#options;
    const credentials = await access.credentials();
    const endpoint = access.endpoint ? new URL(access.endpoint) : undefined;
    const settings: Array<[string, string]> = [
      ['KEY_ID', credentials.accessKeyId],
      ['SECRET', credentials.secretAccessKey],
      ['REGION', access.region],
      ['URL_STYLE', access.pathStyle ? 'path' : 'vhost'],
      ...(credentials.sessionToken
        ? [['SESSION_TOKEN', credentials.sessionToken] as [string, string]]
        : []),
      ...(endpoint
        ? [
            ['ENDPOINT', endpoint.host] as [string, string],
            ['USE_SSL', String(endpoint.protocol === 'https:')] as [string, string],
          ]
        : []),
    ];
    // A secret lives in the instance's memory only (DuckDB never persists a temporary one).
    await connection.run(
      `CREATE OR REPLACE SECRET medlake_s3 (TYPE s3, ${settings
        .map(([name, value]) =>
          name === 'USE_SSL' ? `${name} ${value}` : `${name} ${quoteLiteral(value)}`,
        )
        .join(', ')})`,
    );
    this.#expiresAt = credentials.expiration?.getTime();
  }
}
