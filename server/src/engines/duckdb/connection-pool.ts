import type { DuckDBConnection, DuckDBInstance } from '@duckdb/node-api';

/**
 * A fixed set of connections to one DuckDB instance. They are made, and given their session
 * settings, before the instance's configuration is locked: a connection opened later could not
 * switch on progress tracking any more. A caller waits when all are in use.
 */
export class ConnectionPool {
  readonly #free: DuckDBConnection[];
  readonly #waiting: Array<(connection: DuckDBConnection) => void> = [];

  private constructor(connections: DuckDBConnection[]) {
    this.#free = connections;
  }

  static async open(
    instance: DuckDBInstance,
    size: number,
    sessionSettings: readonly string[],
  ): Promise<ConnectionPool> {
    const connections: DuckDBConnection[] = [];
    for (let i = 0; i < size; i += 1) {
      const connection = await instance.connect();
      for (const statement of sessionSettings) await connection.run(statement);
      connections.push(connection);
    }
    return new ConnectionPool(connections);
  }

  async acquire(): Promise<DuckDBConnection> {
    const connection = this.#free.pop();
    if (connection) return connection;
    return new Promise((resolve) => this.#waiting.push(resolve));
  }

  release(connection: DuckDBConnection): void {
    const next = this.#waiting.shift();
    if (next) next(connection);
    else this.#free.push(connection);
  }

  close(): void {
    for (const connection of this.#free.splice(0)) connection.closeSync();
  }
}
