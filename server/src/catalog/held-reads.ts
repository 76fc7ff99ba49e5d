import type {
  DatabaseConnection,
  Dialect,
  Driver,
  KyselyPlugin,
  OperationNode,
  PluginTransformQueryArgs,
  PluginTransformResultArgs,
  QueryId,
  QueryResult,
  RootOperationNode,
  TransactionSettings,
  UnknownRow,
} from 'kysely';
import { LRUCache } from 'lru-cache';

/**
 * Read-mostly facts of the catalog held in memory, where this process owns the catalog (the
 * embedded PGlite, opened by one process only: every write to it goes through this process's
 * Kysely). Each fact names the tables it was read from; a write to any of them, seen by
 * CatalogWrites as its statement goes out, drops it. On PostgreSQL, which other servers write
 * too, nothing is held: a write there is never seen here.
 *
 * What a fact holds must not depend on the clock: an expiry is read with it and checked by its
 * user at each use (a token's, a grant's).
 */
export class HeldReads {
  readonly #writes: CatalogWrites;
  readonly #facts = new LRUCache<string, { stamp: number; value: object }>({ max: 10_000 });
  /** How many reads went to the catalog (a fact missing, or dropped by a write): for tests. */
  loads = 0;

  constructor(writes: CatalogWrites) {
    this.#writes = writes;
  }

  /**
   * The fact under `key`, read from `tables` by `load` when it is not held or a write to one of
   * them came since it was read. A fact a write raced is returned but not kept. Undefined (none
   * found) is never kept, so that unknown keys fill nothing. `key` must say everything `load`
   * depends on besides the tables.
   */
  async read<T extends object>(
    key: string,
    tables: readonly CatalogTable[],
    load: () => Promise<T | undefined>,
  ): Promise<T | undefined> {
    const held = this.#facts.get(key);
    if (held && !this.#writes.changedSince(held.stamp, tables)) return held.value as T;
    const stamp = this.#writes.stamp();
    this.loads += 1;
    const value = await load();
    if (value !== undefined && !this.#writes.changedSince(stamp, tables)) {
      this.#facts.set(key, { stamp, value });
    } else this.#facts.delete(key);
    return value;
  }
}

/** A table of the catalog, by its name in the database. */
export type CatalogTable = string;

/**
 * The tables whose rows a delete or update of a row of the key's table changes too, through a
 * foreign key's ON DELETE or ON UPDATE action (held-reads.test.ts checks this against the
 * migrated catalog). A write to a table counts as a write to these as well.
 */
export const cascadesOf: Readonly<Record<CatalogTable, readonly CatalogTable[]>> = {
  datasets: ['dictionary_scopes'],
  dictionary_scopes: ['dictionary_code_rows', 'dictionary_code_patients'],
  releases: ['release_files', 'dictionary_release_pairs'],
  query_jobs: ['query_results'],
};

/** What a statement may write: nothing, these tables, or anything (`all`). */
export type Written = 'all' | readonly CatalogTable[];

/**
 * A Kysely plugin that sees every statement this process sends to the catalog and notes which
 * tables it may write, when it goes out and again when its answer comes back; a statement it
 * cannot read (a schema change, raw SQL it cannot place, one that reached the catalog without
 * passing its transformQuery) counts as writing every table. PGlite runs one statement at a
 * time and a read outside a transaction waits for any transaction to end, so a read that starts
 * after a write has come back sees it, or sees it rolled back.
 */
export class CatalogWrites implements KyselyPlugin {
  #clock = 0;
  #all = 0;
  readonly #lastWrite = new Map<CatalogTable, number>();
  readonly #statements = new WeakMap<QueryId, Written>();

  /** The moment now, for changedSince. */
  stamp(): number {
    return this.#clock;
  }

  /** Whether a statement that may write one of the tables went out or came back since `stamp`. */
  changedSince(stamp: number, tables: readonly CatalogTable[]): boolean {
    if (this.#all > stamp) return true;
    for (const table of tables) if ((this.#lastWrite.get(table) ?? 0) > stamp) return true;
    return false;
  }

  /**
   * A rollback, of a transaction or to a savepoint, which the plugin does not see (the driver
   * sends it): a read inside the transaction may have seen writes that are now undone, and may
   * have kept what it read, so it counts as a write to every table.
   */
  rolledBack(): void {
    this.#note('all');
  }

  transformQuery(args: PluginTransformQueryArgs): RootOperationNode {
    const written = writtenTables(args.node);
    this.#statements.set(args.queryId, written);
    this.#note(written);
    return args.node;
  }

  async transformResult(args: PluginTransformResultArgs): Promise<QueryResult<UnknownRow>> {
    this.#note(this.#statements.get(args.queryId) ?? 'all');
    return args.result;
  }

  #note(written: Written): void {
    if (written !== 'all' && written.length === 0) return;
    this.#clock += 1;
    if (written === 'all') {
      this.#all = this.#clock;
      return;
    }
    const pending = [...written];
    for (let table = pending.pop(); table !== undefined; table = pending.pop()) {
      if (this.#lastWrite.get(table) === this.#clock) continue;
      this.#lastWrite.set(table, this.#clock);
      pending.push(...(cascadesOf[table] ?? []));
    }
  }
}

/**
 * The dialect with its driver's rollbacks told to `writes` (CatalogWrites.rolledBack), as they
 * go out and when they are done: Kysely sends begin, commit and rollback, and savepoint
 * commands, through the driver, past every plugin.
 */
export function withRollbacksNoted(dialect: Dialect, writes: CatalogWrites): Dialect {
  return {
    createAdapter: () => dialect.createAdapter(),
    createIntrospector: (db) => dialect.createIntrospector(db),
    createQueryCompiler: () => dialect.createQueryCompiler(),
    createDriver: () => new RollbacksNoted(dialect.createDriver(), writes),
  };
}

class RollbacksNoted implements Driver {
  readonly #driver: Driver;
  readonly #writes: CatalogWrites;

  constructor(driver: Driver, writes: CatalogWrites) {
    this.#driver = driver;
    this.#writes = writes;
  }

  async #rollback(rollback: () => Promise<void>): Promise<void> {
    this.#writes.rolledBack();
    try {
      await rollback();
    } finally {
      this.#writes.rolledBack();
    }
  }

  init(...args: Parameters<Driver['init']>) {
    return this.#driver.init(...args);
  }

  acquireConnection(...args: Parameters<Driver['acquireConnection']>) {
    return this.#driver.acquireConnection(...args);
  }

  beginTransaction(connection: DatabaseConnection, settings: TransactionSettings) {
    return this.#driver.beginTransaction(connection, settings);
  }

  async commitTransaction(connection: DatabaseConnection) {
    try {
      await this.#driver.commitTransaction(connection);
    } catch (error) {
      // A commit that fails ends the transaction as a rollback would.
      this.#writes.rolledBack();
      throw error;
    }
  }

  rollbackTransaction(connection: DatabaseConnection) {
    return this.#rollback(() => this.#driver.rollbackTransaction(connection));
  }

  async savepoint(...args: Parameters<NonNullable<Driver['savepoint']>>) {
    await this.#savepoints('savepoint')(...args);
  }

  rollbackToSavepoint(...args: Parameters<NonNullable<Driver['rollbackToSavepoint']>>) {
    return this.#rollback(() => this.#savepoints('rollbackToSavepoint')(...args));
  }

  async releaseSavepoint(...args: Parameters<NonNullable<Driver['releaseSavepoint']>>) {
    await this.#savepoints('releaseSavepoint')(...args);
  }

  releaseConnection(...args: Parameters<Driver['releaseConnection']>) {
    return this.#driver.releaseConnection(...args);
  }

  destroy(...args: Parameters<Driver['destroy']>) {
    return this.#driver.destroy(...args);
  }

  #savepoints(command: 'savepoint' | 'rollbackToSavepoint' | 'releaseSavepoint') {
    const run = this.#driver[command]?.bind(this.#driver);
    if (!run) throw new Error(`The catalog's driver has no ${command}`);
    return run;
  }
}

const writeKinds = new Set([
  'InsertQueryNode',
  'UpdateQueryNode',
  'DeleteQueryNode',
  'MergeQueryNode',
]);

/**
 * The tables a statement may write: the targets of every insert, update, delete or merge in it
 * (in a CTE too) and of raw SQL that writes; `all` for anything else that is not a select (a
 * schema change), or a write whose target it cannot name. Of a statement built with Kysely only
 * its own target and its WITH clause are read: PostgreSQL takes a data-modifying statement
 * nowhere else (a subquery or a nested WITH holding one is refused), and walking every
 * expression of every statement cost a third of a millisecond per query. Raw SQL is read whole,
 * the SQL it nests included.
 */
export function writtenTables(root: RootOperationNode): Written {
  if (root.kind !== 'SelectQueryNode' && root.kind !== 'RawNode' && !writeKinds.has(root.kind)) {
    return 'all';
  }
  const tables = new Set<CatalogTable>();
  let unknown = false;
  const visit = (node: OperationNode) => {
    if (unknown) return;
    if (writeKinds.has(node.kind)) {
      const target = targetOf(node);
      if (target === undefined) unknown = true;
      else tables.add(target);
    } else if (node.kind === 'RawNode') {
      const written = rawWrites(
        (node as unknown as { sqlFragments: readonly string[] }).sqlFragments,
      );
      if (written === 'all') unknown = true;
      else for (const table of written) tables.add(table);
    }
    // A value is data, whatever its shape: a JSON object with a `kind` is no statement.
    if (node.kind === 'ValueNode' || node.kind === 'PrimitiveValueListNode') return;
    for (const value of Object.values(node)) {
      if (Array.isArray(value)) {
        for (const item of value) if (isNode(item)) visit(item);
      } else if (isNode(value)) visit(value);
    }
  };
  if (root.kind === 'RawNode') visit(root);
  else {
    if (writeKinds.has(root.kind)) {
      const target = targetOf(root);
      if (target === undefined) return 'all';
      tables.add(target);
    }
    const cte = (root as unknown as { with?: OperationNode }).with;
    if (cte) visit(cte);
  }
  return unknown ? 'all' : [...tables];
}

function isNode(value: unknown): value is OperationNode {
  return (
    typeof value === 'object' && value !== null && typeof (value as OperationNode).kind === 'string'
  );
}

/** The table a Kysely insert, update, delete or merge writes; undefined when it is not one table. */
function targetOf(node: OperationNode): CatalogTable | undefined {
  const fields = node as unknown as {
    into?: OperationNode;
    table?: OperationNode;
    from?: { froms?: readonly OperationNode[] };
  };
  const targets =
    node.kind === 'InsertQueryNode' || node.kind === 'MergeQueryNode'
      ? [fields.into]
      : node.kind === 'UpdateQueryNode'
        ? [fields.table]
        : (fields.from?.froms ?? []);
  if (targets.length !== 1) return undefined;
  return tableName(targets[0]);
}

function tableName(node: OperationNode | undefined): CatalogTable | undefined {
  if (node?.kind === 'AliasNode')
    return tableName((node as unknown as { node: OperationNode }).node);
  if (node?.kind !== 'TableNode') return undefined;
  return (node as unknown as { table: { identifier: { name: string } } }).table.identifier.name;
}

/**
 * Words that start or make a statement that may change the catalog, in raw SQL; a rollback
 * (of a transaction or to a savepoint) undoes writes that reads inside it may have seen.
 */
const writeWords =
  /\b(insert|update|delete|merge|truncate|alter|drop|create|copy|grant|revoke|comment|call|do|refresh|reindex|cluster|vacuum|import|execute|lock|discard|reset|security|load|prepare|rollback|abort)\b/g;

/** A name, bare or quoted, and a name qualified by a schema (and a database) or not. */
const part = String.raw`(?:"(?:[^"]|"")*"|[a-z_][a-z0-9_$]*)`;
const name = String.raw`(?:only\s+)?(${part}(?:\s*\.\s*${part})*)`;
const targetAfter: Record<string, RegExp> = {
  insert: new RegExp(String.raw`^insert\s+into\s+${name}`),
  update: new RegExp(String.raw`^update\s+${name}`),
  delete: new RegExp(String.raw`^delete\s+from\s+${name}`),
  merge: new RegExp(String.raw`^merge\s+into\s+${name}`),
};

/**
 * What PostgreSQL reads as one piece in raw SQL, each from where it starts: a dollar-quoted
 * string, an escape string, a string, a quoted name, a comment. Read in one pass, left to
 * right, so that a quote inside a comment or a name, or an escaped one, starts nothing.
 */
const pieces =
  /\$([A-Za-z_][A-Za-z0-9_]*)?\$[\s\S]*?\$\1\$|(?<![A-Za-z0-9_$])[eE]'(?:[^'\\]|\\[\s\S]|'')*'|'(?:[^']|'')*'|"(?:[^"]|"")*"|--[^\n]*|\/\*[\s\S]*?\*\//g;

/** The table a qualified name names, unquoted; undefined when it has more than three parts. */
function lastPart(qualified: string): CatalogTable | undefined {
  const parts = qualified.match(new RegExp(part, 'g')) ?? [];
  const last = parts.at(-1);
  if (parts.length > 3 || last === undefined) return undefined;
  return last.startsWith('"') ? last.slice(1, -1).replaceAll('""', '"') : last;
}

/**
 * The tables raw SQL may write, from its text (the parameters between the fragments are
 * visited as nodes of their own): `all` where it writes something it cannot name. String
 * literals and comments are left out; `for update` (a lock) and `on conflict do update` (the
 * insert's own table) are not writes of their own.
 */
export function rawWrites(fragments: readonly string[]): Written {
  // A parameter stands between fragments: a name cannot be read across one.
  const text = fragments
    .join(' \u0001 ')
    .replace(pieces, (piece) =>
      piece.startsWith('"') ? piece : piece.startsWith('-') || piece.startsWith('/') ? ' ' : "''",
    )
    .toLowerCase();
  const tables: CatalogTable[] = [];
  for (const match of text.matchAll(writeWords)) {
    const word = match[1]!;
    const before = text.slice(0, match.index).trimEnd();
    if (word === 'update' && /\b(for|for no key|do)$/.test(before)) continue;
    if (word === 'do' && /\bconflict(\s*\([^)]*\))?(\s+on\s+constraint\s+\S+)?$/.test(before)) {
      continue;
    }
    const pattern = targetAfter[word];
    const qualified = pattern?.exec(text.slice(match.index))?.[1];
    const target = qualified === undefined ? undefined : lastPart(qualified);
    if (target === undefined) return 'all';
    tables.push(target);
  }
  return tables;
}
