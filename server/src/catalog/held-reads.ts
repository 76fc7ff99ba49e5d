import type {
  AbortableOperationOptions,
  CompiledQuery,
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
  readonly #facts = new LRUCache<string, { stamp: number; value: object }>({
    max: 10_000,
    // A fact counts as one, or as what its `heldSize` says (a ledger index, by its cells).
    maxSize: 500_000,
    sizeCalculation: ({ value }) =>
      Math.max(1, Math.ceil((value as { [heldSize]?: number })[heldSize] ?? 1)),
  });
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
    return this.readGrowing(key, tables, load);
  }

  /**
   * As `read`, for a fact that rows added to its tables only extend: where the writes since it
   * was read only added rows (plain inserts, committed), `grow` brings the held value up to
   * date (reading only what was added) instead of `load` reading it whole; any other write
   * drops it. `grow` may change the held value in place, but must leave it whole and true at
   * every moment: two reads may grow it at once.
   */
  async readGrowing<T extends object>(
    key: string,
    tables: readonly CatalogTable[],
    load: () => Promise<T | undefined>,
    grow?: (held: T) => Promise<T | undefined>,
  ): Promise<T | undefined> {
    const held = this.#facts.get(key);
    if (held && !this.#writes.changedSince(held.stamp, tables)) return held.value as T;
    const stamp = this.#writes.stamp();
    this.loads += 1;
    const value =
      held && grow && !this.#writes.rewrittenSince(held.stamp, tables)
        ? await grow(held.value as T)
        : await load();
    if (value !== undefined && !this.#writes.changedSince(stamp, tables)) {
      this.#facts.set(key, { stamp, value });
    } else this.#facts.delete(key);
    return value;
  }

  /**
   * Runs `write`, one statement of this process that adds rows to `tables` outside any
   * transaction, and keeps the facts under the keys of `updates` current by applying to each
   * what the statement returned, instead of dropping them: only a fact current when the
   * statement went out, and only when no other write went out or came back while it ran (the
   * clock moved by the statement's own two notes alone). Otherwise they are dropped or grown at
   * their next read, as after any write.
   */
  async writeThrough<R>(
    tables: readonly CatalogTable[],
    updates: ReadonlyMap<string, (held: object, result: R) => object | undefined>,
    write: () => Promise<R>,
  ): Promise<R> {
    const current = new Map<string, object>();
    for (const key of updates.keys()) {
      const held = this.#facts.get(key);
      if (held && !this.#writes.changedSince(held.stamp, tables)) current.set(key, held.value);
    }
    const before = this.#writes.stamp();
    const result = await write();
    const alone =
      this.#writes.stamp() === before + 2 && !this.#writes.changedSince(before + 2, tables);
    for (const [key, update] of updates) {
      const held = current.get(key);
      const value = alone && held !== undefined ? update(held, result) : undefined;
      if (value !== undefined) this.#facts.set(key, { stamp: this.#writes.stamp(), value });
    }
    return result;
  }
}

/**
 * What a held fact weighs against the others, where it is more than one (the cells of a ledger
 * index): the facts held weigh at most 500,000 in all, the least recently used dropped first.
 */
export const heldSize: unique symbol = Symbol('heldSize');

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
 * What a statement may write (`written`), and of that what it may change or remove rather than
 * only add rows to (`rewritten`): an insert without ON CONFLICT … DO UPDATE only adds.
 */
export type StatementWrites = { written: Written; rewritten: Written };

const everything: StatementWrites = { written: 'all', rewritten: 'all' };

/**
 * A Kysely plugin that sees every statement this process sends to the catalog and notes which
 * tables it may write, when it goes out and again when its answer comes back; a statement it
 * cannot read (a schema change, raw SQL it cannot place, one that reached the catalog without
 * passing its transformQuery) counts as writing every table. PGlite runs one statement at a
 * time and a read outside a transaction waits for any transaction to end, so a read that starts
 * after a write has come back sees it, or sees it rolled back.
 *
 * It also follows each transaction that Kysely begins (told by withRollbacksNoted's driver):
 * the tables its statements may write count as written for as long as it is open, so that no
 * fact read inside it after its own write is kept (other requests would be answered from memory
 * with what was never committed). Its rollback, or a commit that fails, counts as a write to
 * those tables once more, and a rollback to a savepoint as a write to the tables of the
 * statements sent since the savepoint: a read inside whose answer comes back after the rollback
 * may hold what it undid. Only those facts are dropped: a rollback is common (a full queue, a
 * refused spec), and dropping every fact at each would let any user keep them all cold. A
 * rollback it cannot place (raw `rollback` SQL, one of a transaction it did not see begin), or
 * of a transaction that sent a statement it could not read, counts as a write to every table.
 */
export class CatalogWrites implements KyselyPlugin {
  #clock = 0;
  #all = 0;
  readonly #lastWrite = new Map<CatalogTable, number>();
  /**
   * The last write to each table that may have changed or removed rows, not only added them:
   * an update, a delete, raw SQL, a rollback (which takes back what was added).
   */
  readonly #lastRewrite = new Map<CatalogTable, number>();
  readonly #statements = new WeakMap<QueryId, StatementWrites>();
  /** The transactions begun on each connection and not yet ended. */
  readonly #open = new Map<DatabaseConnection, Transaction>();

  /** The moment now, for changedSince. */
  stamp(): number {
    return this.#clock;
  }

  /**
   * Whether a statement that may write one of the tables went out or came back since `stamp`,
   * or went out in a transaction still open.
   */
  changedSince(stamp: number, tables: readonly CatalogTable[]): boolean {
    if (this.#all > stamp) return true;
    for (const table of tables) if ((this.#lastWrite.get(table) ?? 0) > stamp) return true;
    for (const open of this.#open.values()) {
      if (open.over) continue;
      if (open.written === 'all') return true;
      for (const table of tables) if (open.written.has(table)) return true;
    }
    return false;
  }

  /**
   * Whether a statement that may change or remove rows of one of the tables (more than add
   * rows to them) went out or came back since `stamp`, or a transaction that may write them is
   * open (a rollback would take back what it added).
   */
  rewrittenSince(stamp: number, tables: readonly CatalogTable[]): boolean {
    if (this.#all > stamp) return true;
    for (const table of tables) if ((this.#lastRewrite.get(table) ?? 0) > stamp) return true;
    for (const open of this.#open.values()) {
      if (open.over) continue;
      if (open.written === 'all') return true;
      for (const table of tables) if (open.written.has(table)) return true;
    }
    return false;
  }

  transformQuery(args: PluginTransformQueryArgs): RootOperationNode {
    const writes = statementWrites(args.node);
    this.#statements.set(args.queryId, writes);
    this.#note(writes.written, writes.rewritten);
    return args.node;
  }

  async transformResult(args: PluginTransformResultArgs): Promise<QueryResult<UnknownRow>> {
    const writes = this.#statements.get(args.queryId) ?? everything;
    this.#note(writes.written, writes.rewritten);
    return args.result;
  }

  /** A transaction has begun on `connection`. */
  begun(connection: DatabaseConnection): void {
    // Kysely ends one transaction before it begins another on a connection: one it did not
    // is one whose end was never seen.
    const before = this.#open.get(connection);
    if (before && !before.over) this.#note('all');
    this.#open.set(connection, { written: new Set(), statements: [], savepoints: [], over: false });
  }

  /** A statement goes out on `connection`: in its open transaction, if there is one. */
  sent(connection: DatabaseConnection, queryId: QueryId): void {
    const open = this.#open.get(connection);
    if (!open || open.over) return;
    const written = this.#statements.get(queryId)?.written ?? 'all';
    open.statements.push(written);
    if (open.written === 'all') return;
    if (written === 'all') open.written = 'all';
    else for (const table of withCascades(written)) open.written.add(table);
  }

  /** A savepoint was made in the transaction open on `connection`. */
  savepointMade(connection: DatabaseConnection, name: string): void {
    const open = this.#open.get(connection);
    if (open && !open.over) open.savepoints.push({ name, at: open.statements.length });
  }

  /**
   * A rollback to a savepoint: a write to the tables the statements since it may have written
   * (to every table, where the savepoint is not known). The savepoints made after it are gone.
   */
  rolledBackTo(connection: DatabaseConnection, name: string): void {
    const open = this.#open.get(connection);
    const index = open && !open.over ? open.savepoints.findLastIndex((s) => s.name === name) : -1;
    const savepoint = open?.savepoints[index];
    if (!open || !savepoint) {
      this.#note('all');
      return;
    }
    open.savepoints.length = index + 1;
    const tables: CatalogTable[] = [];
    for (const written of open.statements.slice(savepoint.at)) {
      if (written === 'all') {
        this.#note('all');
        return;
      }
      tables.push(...written);
    }
    this.#note(tables);
  }

  /** A savepoint was released: it and those made after it are gone. */
  released(connection: DatabaseConnection, name: string): void {
    const open = this.#open.get(connection);
    const index = open?.savepoints.findLastIndex((s) => s.name === name) ?? -1;
    if (open && index >= 0) open.savepoints.length = index;
  }

  /**
   * The transaction on `connection` ended: committed, rolled back, or (`failedCommit`) ended
   * by a commit that failed, after which Kysely may still send a rollback for it. A rollback
   * or a failed commit is a write to every table it may have written; to every table, where
   * no transaction was seen begin.
   */
  ended(connection: DatabaseConnection, how: 'commit' | 'rollback' | 'failedCommit'): void {
    const open = this.#open.get(connection);
    if (!open || (open.over && how !== 'rollback')) {
      this.#open.delete(connection);
      this.#note('all');
      return;
    }
    if (how === 'failedCommit') open.over = true;
    else this.#open.delete(connection);
    // What a committed transaction wrote was noted as each statement went out and came back.
    if (how === 'commit') return;
    this.#note(open.written === 'all' ? 'all' : [...open.written]);
  }

  /**
   * Notes a write to the tables, of which `rewritten` (by default all of them: a rollback, a
   * statement not read) may have changed or removed rows rather than only added them.
   */
  #note(written: Written, rewritten: Written = written): void {
    if (written !== 'all' && written.length === 0) return;
    this.#clock += 1;
    if (written === 'all' || rewritten === 'all') {
      this.#all = this.#clock;
      return;
    }
    for (const table of withCascades(written)) this.#lastWrite.set(table, this.#clock);
    // What a write cascades to is updated or deleted, never only added to.
    const cascaded = written.flatMap((table) => cascadesOf[table] ?? []);
    for (const table of withCascades([...rewritten, ...cascaded])) {
      this.#lastRewrite.set(table, this.#clock);
    }
  }
}

/** What a transaction open on a connection has sent. */
type Transaction = {
  /** The tables its statements may write, with those they cascade to. */
  written: Set<CatalogTable> | 'all';
  /** What each of its statements may write, in the order they went out. */
  statements: Written[];
  /** Its savepoints, oldest first, each with the number of statements sent before it. */
  savepoints: Array<{ name: string; at: number }>;
  /** Ended by a commit that failed: nothing more goes out in it. */
  over: boolean;
};

/** The tables, and the tables a write to them changes too (cascadesOf), each once. */
function withCascades(tables: readonly CatalogTable[]): Set<CatalogTable> {
  const found = new Set<CatalogTable>();
  const pending = [...tables];
  for (let table = pending.pop(); table !== undefined; table = pending.pop()) {
    if (found.has(table)) continue;
    found.add(table);
    pending.push(...(cascadesOf[table] ?? []));
  }
  return found;
}

/**
 * The dialect with its driver's transactions told to `writes`: each begin, statement, savepoint,
 * rollback, commit (CatalogWrites.begun and what follows it). Kysely sends begin, commit and
 * rollback, and savepoint commands, through the driver, past every plugin; which transaction a
 * statement belongs to is known only by the connection it goes out on.
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
  /** The one watched connection for each of the driver's. */
  readonly #watched = new WeakMap<DatabaseConnection, WatchedConnection>();

  constructor(driver: Driver, writes: CatalogWrites) {
    this.#driver = driver;
    this.#writes = writes;
  }

  init(...args: Parameters<Driver['init']>) {
    return this.#driver.init(...args);
  }

  async acquireConnection(...args: Parameters<Driver['acquireConnection']>) {
    const connection = await this.#driver.acquireConnection(...args);
    let watched = this.#watched.get(connection);
    if (!watched) {
      watched = new WatchedConnection(connection, this.#writes);
      this.#watched.set(connection, watched);
    }
    return watched;
  }

  async beginTransaction(connection: DatabaseConnection, settings: TransactionSettings) {
    await this.#driver.beginTransaction(inner(connection), settings);
    this.#writes.begun(connection);
  }

  async commitTransaction(connection: DatabaseConnection) {
    try {
      await this.#driver.commitTransaction(inner(connection));
    } catch (error) {
      // A commit that fails ends the transaction as a rollback would.
      this.#writes.ended(connection, 'failedCommit');
      throw error;
    }
    this.#writes.ended(connection, 'commit');
  }

  async rollbackTransaction(connection: DatabaseConnection) {
    try {
      await this.#driver.rollbackTransaction(inner(connection));
    } finally {
      this.#writes.ended(connection, 'rollback');
    }
  }

  async savepoint(
    connection: DatabaseConnection,
    name: string,
    compileQuery: Parameters<NonNullable<Driver['savepoint']>>[2],
  ) {
    await this.#savepoints('savepoint')(inner(connection), name, compileQuery);
    this.#writes.savepointMade(connection, name);
  }

  async rollbackToSavepoint(
    connection: DatabaseConnection,
    name: string,
    compileQuery: Parameters<NonNullable<Driver['rollbackToSavepoint']>>[2],
  ) {
    try {
      await this.#savepoints('rollbackToSavepoint')(inner(connection), name, compileQuery);
    } finally {
      this.#writes.rolledBackTo(connection, name);
    }
  }

  async releaseSavepoint(
    connection: DatabaseConnection,
    name: string,
    compileQuery: Parameters<NonNullable<Driver['releaseSavepoint']>>[2],
  ) {
    await this.#savepoints('releaseSavepoint')(inner(connection), name, compileQuery);
    this.#writes.released(connection, name);
  }

  releaseConnection(connection: DatabaseConnection, options?: AbortableOperationOptions) {
    return this.#driver.releaseConnection(inner(connection), options);
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

/** A connection of the driver's whose statements are told to CatalogWrites as they go out. */
class WatchedConnection implements DatabaseConnection {
  readonly inner: DatabaseConnection;
  readonly #writes: CatalogWrites;
  readonly cancelQuery?: DatabaseConnection['cancelQuery'];
  readonly collectSessionInfo?: DatabaseConnection['collectSessionInfo'];
  readonly killSession?: DatabaseConnection['killSession'];

  constructor(connection: DatabaseConnection, writes: CatalogWrites) {
    this.inner = connection;
    this.#writes = writes;
    // What Kysely asks of a connection to cancel a statement, where the driver's can.
    if (connection.cancelQuery) this.cancelQuery = connection.cancelQuery.bind(connection);
    if (connection.collectSessionInfo) {
      this.collectSessionInfo = connection.collectSessionInfo.bind(connection);
    }
    if (connection.killSession) this.killSession = connection.killSession.bind(connection);
  }

  executeQuery<R>(
    compiledQuery: CompiledQuery,
    options?: AbortableOperationOptions,
  ): Promise<QueryResult<R>> {
    this.#writes.sent(this, compiledQuery.queryId);
    return this.inner.executeQuery<R>(compiledQuery, options);
  }

  streamQuery<R>(
    compiledQuery: CompiledQuery,
    chunkSize: number,
    options?: AbortableOperationOptions,
  ): AsyncIterableIterator<QueryResult<R>> {
    this.#writes.sent(this, compiledQuery.queryId);
    return this.inner.streamQuery<R>(compiledQuery, chunkSize, options);
  }
}

/** The driver's own connection behind a watched one, for the driver's own commands. */
function inner(connection: DatabaseConnection): DatabaseConnection {
  return connection instanceof WatchedConnection ? connection.inner : connection;
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
  return statementWrites(root).written;
}

/**
 * What a statement may write, as writtenTables reads it, and which of those tables it may do
 * more to than add rows: every write but a Kysely insert without ON CONFLICT … DO UPDATE (raw
 * SQL's included).
 */
export function statementWrites(root: RootOperationNode): StatementWrites {
  if (root.kind !== 'SelectQueryNode' && root.kind !== 'RawNode' && !writeKinds.has(root.kind)) {
    return everything;
  }
  const tables = new Set<CatalogTable>();
  const rewritten = new Set<CatalogTable>();
  let unknown = false;
  const note = (node: OperationNode, target: CatalogTable) => {
    tables.add(target);
    if (!onlyAdds(node)) rewritten.add(target);
  };
  const visit = (node: OperationNode) => {
    if (unknown) return;
    if (writeKinds.has(node.kind)) {
      const target = targetOf(node);
      if (target === undefined) unknown = true;
      else note(node, target);
    } else if (node.kind === 'RawNode') {
      const written = rawWrites(
        (node as unknown as { sqlFragments: readonly string[] }).sqlFragments,
      );
      if (written === 'all') unknown = true;
      else
        for (const table of written) {
          tables.add(table);
          rewritten.add(table);
        }
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
      if (target === undefined) return everything;
      note(root, target);
    }
    const cte = (root as unknown as { with?: OperationNode }).with;
    if (cte) visit(cte);
  }
  return unknown ? everything : { written: [...tables], rewritten: [...rewritten] };
}

/** Whether a Kysely write only adds rows: an insert with no ON CONFLICT … DO UPDATE or upsert. */
function onlyAdds(node: OperationNode): boolean {
  if (node.kind !== 'InsertQueryNode') return false;
  const insert = node as unknown as {
    onConflict?: { updates?: readonly unknown[] };
    onDuplicateKey?: unknown;
    replace?: boolean;
  };
  return !insert.onConflict?.updates && !insert.onDuplicateKey && !insert.replace;
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
