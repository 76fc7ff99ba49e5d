import { randomUUID } from 'node:crypto';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { Table, tableFromIPC, tableToIPC } from 'apache-arrow';
import protobuf from 'protobufjs';
import { AppError, UnavailableError } from '../../errors.ts';
import type { ConnectTarget } from './connect-url.ts';
import type { ParquetScan } from './spark-scans.ts';
import { literalOf, type Literal } from './spark-literals.ts';

const protoDirectory = fileURLToPath(new URL('./proto/', import.meta.url));
const loadOptions: protoLoader.Options = {
  // camelCase fields, 64-bit integers as text (no precision lost), oneofs named.
  longs: String,
  enums: String,
  defaults: false,
  oneofs: true,
  includeDirs: [protoDirectory],
};
const connectPackage = grpc.loadPackageDefinition(
  protoLoader.loadSync('spark-connect.proto', loadOptions),
) as unknown as { spark: { connect: { SparkConnectService: grpc.ServiceClientConstructor } } };
const clientType = 'medlake';

/** How many times a broken result stream is picked up again before the query fails. */
const maxReattachments = 5;

type ExecuteResponse = {
  serverSideSessionId?: string;
  operationId?: string;
  responseId?: string;
  responseType?: 'arrowBatch' | 'resultComplete' | 'executionProgress';
  arrowBatch?: { rowCount: string; data: Buffer };
  executionProgress?: {
    stages?: Array<{ numTasks?: string; numCompletedTasks?: string; done?: boolean }>;
  };
};

type ErrorDetailsResponse = {
  rootErrorIdx?: number;
  errors?: Array<{
    errorTypeHierarchy?: string[];
    message?: string;
    sparkThrowable?: { errorClass?: string; sqlState?: string };
  }>;
};

export type ExecuteOptions = {
  /** Aborting interrupts the operation on the server and rejects the call. */
  signal?: AbortSignal;
  /** Gives up (as unreachable) when the server has not answered whole within this time. */
  timeoutMs?: number;
  /** Called with the share of the operation's tasks done, 0 to 100, as Spark reports it. */
  onProgress?: (percent: number) => void;
};

/**
 * A Spark Connect client for SQL: one session on the server, statements with named
 * parameters, results read as Arrow. Executions are reattachable, so a result stream that
 * breaks (a proxy's idle timeout, a restarted load balancer) is picked up where it stopped;
 * finished operations are released, and the session on close.
 */
export class SparkConnectClient {
  readonly #target: ConnectTarget;
  readonly #client: grpc.Client;
  readonly #sessionId = randomUUID();
  #serverSideSessionId: string | undefined;

  constructor(target: ConnectTarget) {
    this.#target = target;
    const channel = target.useSsl
      ? grpc.credentials.combineChannelCredentials(
          grpc.credentials.createSsl(),
          ...(target.token ? [bearer(target.token)] : []),
        )
      : grpc.credentials.createInsecure();
    this.#client = new connectPackage.spark.connect.SparkConnectService(
      `${target.host}:${target.port}`,
      channel,
      // Results arrive in Arrow batches of up to a few MB; the default 4 MB would refuse some.
      { 'grpc.max_receive_message_length': 128 * 1024 * 1024 },
    );
  }

  /**
   * Runs one SQL statement and returns its result. `:name` markers in the statement are bound
   * to the arguments by the server; no value is ever written into the SQL text.
   */
  async sql(
    query: string,
    args: Readonly<Record<string, unknown>> = {},
    options: ExecuteOptions = {},
  ): Promise<Table> {
    return this.#execute({ root: sqlRelation(query, args) }, options);
  }

  /**
   * Runs one SQL statement whose text refers to Parquet scans by name: each name is bound to
   * its files, given one by one, so that a file missing fails the statement where a glob over
   * the same files would pass over it (spark-scans.ts).
   */
  async sqlOverScans(
    query: string,
    scans: readonly ParquetScan[],
    args: Readonly<Record<string, unknown>> = {},
    options: ExecuteOptions = {},
  ): Promise<Table> {
    const root = sqlRelation(query, args);
    if (scans.length === 0) return this.#execute({ root }, options);
    const references = scans.map((scan) => ({
      subqueryAlias: {
        alias: scan.name,
        input: {
          read: {
            dataSource: {
              format: 'parquet',
              paths: scan.paths,
              options: scan.basePath ? { basePath: scan.basePath } : {},
            },
          },
        },
      },
    }));
    return this.#execute({ root: { withRelations: { root, references } } }, options);
  }

  /**
   * Makes a query's rows a temporary view of the session. Unlike a CREATE VIEW statement, the
   * query may have named parameters: they are bound as the view is made.
   */
  async createQueryView(
    name: string,
    query: string,
    args: Readonly<Record<string, unknown>> = {},
    options: ExecuteOptions = {},
  ): Promise<void> {
    await this.#execute(viewCommand(name, sqlRelation(query, args)), options);
  }

  /**
   * Makes rows held here a temporary view of the session, sent with the plan as Arrow. The
   * rows are not written anywhere; the view ends with the session.
   */
  async createView(name: string, rows: Table, schema: string): Promise<void> {
    const data = Buffer.from(tableToIPC(rows, 'stream'));
    await this.#execute(viewCommand(name, { localRelation: { data, schema } }));
  }

  async #execute(plan: object, options: ExecuteOptions = {}): Promise<Table> {
    const operationId = randomUUID();
    const request = {
      ...this.#base(),
      operationId,
      plan,
      requestOptions: [{ reattachOptions: { reattachable: true } }],
    };

    const { signal, onProgress, timeoutMs } = options;
    const deadline = timeoutMs ? { deadline: Date.now() + timeoutMs } : {};
    if (signal?.aborted) throw stopped(signal);
    let current: grpc.ClientReadableStream<ExecuteResponse> | undefined;
    const interrupt = () => {
      current?.cancel();
      void this.#interrupt(operationId);
    };
    signal?.addEventListener('abort', interrupt, { once: true });

    const batches: Table[] = [];
    let lastResponseId: string | undefined;
    let complete = false;
    try {
      for (let attempt = 0; !complete; attempt++) {
        current =
          attempt === 0
            ? this.#stream('ExecutePlan', request, deadline)
            : this.#stream(
                'ReattachExecute',
                { ...this.#base(), operationId, ...(lastResponseId ? { lastResponseId } : {}) },
                deadline,
              );
        try {
          for await (const response of current as AsyncIterable<ExecuteResponse>) {
            this.#observe(response);
            lastResponseId = response.responseId || lastResponseId;
            if (response.arrowBatch) batches.push(tableFromIPC(response.arrowBatch.data));
            if (response.executionProgress && onProgress) {
              const percent = progressOf(response.executionProgress);
              if (percent !== null) onProgress(percent);
            }
            if (response.responseType === 'resultComplete') complete = true;
          }
        } catch (error) {
          if (signal?.aborted) throw stopped(signal);
          if (error instanceof AppError) throw error;
          if (!isBrokenStream(error) || attempt >= maxReattachments) {
            throw await this.#explain(error);
          }
        }
      }
    } finally {
      signal?.removeEventListener('abort', interrupt);
      void this.#release(operationId);
    }
    return concatTables(batches);
  }

  /** Ends the session on the server (its temporary state goes with it) and the connection. */
  async close(): Promise<void> {
    try {
      await this.#unary('ReleaseSession', {
        sessionId: this.#sessionId,
        userContext: this.#userContext(),
        clientType,
      });
    } catch {
      // A server that is gone has no session left to release.
    } finally {
      this.#client.close();
    }
  }

  #base() {
    return {
      sessionId: this.#sessionId,
      userContext: this.#userContext(),
      clientType,
      ...(this.#serverSideSessionId
        ? { clientObservedServerSideSessionId: this.#serverSideSessionId }
        : {}),
    };
  }

  #userContext() {
    return { userId: this.#target.userId, userName: this.#target.userId };
  }

  /**
   * Remembers the server's id for the session; a different one means the server lost the
   * session (it restarted), and the results so far belong to a session that is gone.
   */
  #observe(response: ExecuteResponse): void {
    const seen = response.serverSideSessionId;
    if (!seen) return;
    if (this.#serverSideSessionId && this.#serverSideSessionId !== seen) {
      throw new UnavailableError(
        'engine_unavailable',
        'The Spark Connect server lost the session; run the query again',
      );
    }
    this.#serverSideSessionId = seen;
  }

  #stream(method: 'ExecutePlan' | 'ReattachExecute', request: object, options: grpc.CallOptions) {
    const call = (
      this.#client as unknown as Record<
        string,
        (request: object, metadata: grpc.Metadata, options: grpc.CallOptions) => unknown
      >
    )[method]!;
    return call.call(
      this.#client,
      request,
      this.#metadata(),
      options,
    ) as grpc.ClientReadableStream<ExecuteResponse>;
  }

  /** The URL's headers, sent with every call. */
  #metadata(): grpc.Metadata {
    const metadata = new grpc.Metadata();
    for (const [name, value] of Object.entries(this.#target.headers)) metadata.set(name, value);
    return metadata;
  }

  #unary<T>(method: string, request: object): Promise<T> {
    const call = (this.#client as unknown as Record<string, grpc.requestCallback<T> | undefined>)[
      method
    ] as unknown as (
      request: object,
      metadata: grpc.Metadata,
      callback: grpc.requestCallback<T>,
    ) => void;
    return new Promise((resolve, reject) =>
      call.call(
        this.#client,
        request,
        this.#metadata(),
        (error: grpc.ServiceError | null, response?: T) =>
          error ? reject(error) : resolve(response as T),
      ),
    );
  }

  async #interrupt(operationId: string): Promise<void> {
    try {
      await this.#unary('Interrupt', {
        ...this.#base(),
        interruptType: 'INTERRUPT_TYPE_OPERATION_ID',
        operationId,
      });
    } catch {
      // Interrupting an operation that has ended already is not an error to report.
    }
  }

  /** Tells the server it may drop what it kept of an operation for reattachment. */
  async #release(operationId: string): Promise<void> {
    try {
      await this.#unary('ReleaseExecute', { ...this.#base(), operationId, releaseAll: {} });
    } catch {
      // The server releases abandoned operations itself after a while.
    }
  }

  /**
   * A failed call as a medlake error: Spark's own message for the root error (fetched by the
   * error id the server attaches), or the transport's when the server cannot be reached.
   */
  async #explain(error: unknown): Promise<AppError> {
    const status = error as Partial<grpc.ServiceError>;
    if (status.code === grpc.status.UNAVAILABLE || status.code === grpc.status.DEADLINE_EXCEEDED) {
      return new UnavailableError(
        'engine_unavailable',
        `The Spark Connect server at ${this.#target.host}:${this.#target.port} cannot be reached: ${status.details ?? 'no answer'}`,
      );
    }
    if (
      status.code === grpc.status.UNAUTHENTICATED ||
      status.code === grpc.status.PERMISSION_DENIED
    ) {
      return new UnavailableError(
        'engine_unavailable',
        'The Spark Connect server refused medlake: check the token in SPARK_CONNECT_URL',
      );
    }
    const errorId = status.metadata ? errorIdOf(status.metadata) : undefined;
    let message = status.details ?? String(error);
    if (errorId) {
      try {
        const details = await this.#unary<ErrorDetailsResponse>('FetchErrorDetails', {
          ...this.#base(),
          errorId,
        });
        const root = details.errors?.[details.rootErrorIdx ?? 0];
        if (root?.message) message = root.message;
      } catch {
        // The short message from the status is still worth showing.
      }
    }
    // A restarted server no longer knows the session: the engine then opens a new one.
    if (message.includes('INVALID_HANDLE')) {
      return new UnavailableError(
        'engine_unavailable',
        'The Spark Connect server lost the session; run the query again',
      );
    }
    // The first line says what went wrong; the rest is Spark's plan, with the lake's paths.
    return new AppError(
      'engine_failed',
      `Spark could not run the statement: ${
        message
          .split('\n')
          .find((line) => line.trim() !== '')
          ?.trim() ?? 'no message'
      }`,
    );
  }
}

function bearer(token: string): grpc.CallCredentials {
  return grpc.credentials.createFromMetadataGenerator((_params, callback) => {
    const metadata = new grpc.Metadata();
    metadata.set('authorization', `Bearer ${token}`);
    callback(null, metadata);
  });
}

function stopped(signal: AbortSignal): AppError {
  return signal.reason instanceof AppError
    ? signal.reason
    : new AppError('query_stopped', 'The query was stopped');
}

/** Whether a stream ended by the network rather than by the server's answer. */
function isBrokenStream(error: unknown): boolean {
  const code = (error as Partial<grpc.ServiceError>).code;
  return code === grpc.status.UNAVAILABLE || code === grpc.status.INTERNAL;
}

/** A SQL statement as a relation, its arguments as literals. */
function sqlRelation(query: string, args: Readonly<Record<string, unknown>>) {
  const namedArguments: Record<string, { literal: Literal }> = {};
  for (const [name, value] of Object.entries(args)) {
    namedArguments[name] = { literal: literalOf(value) };
  }
  return { sql: { query, namedArguments } };
}

function viewCommand(name: string, input: object) {
  return { command: { createDataframeView: { input, name, isGlobal: false, replace: true } } };
}

/** The share of tasks done over the stages Spark has reported, or null before any. */
function progressOf(progress: NonNullable<ExecuteResponse['executionProgress']>): number | null {
  const stages = progress.stages ?? [];
  const total = stages.reduce((sum, stage) => sum + Number(stage.numTasks ?? 0), 0);
  if (total === 0) return null;
  const done = stages.reduce((sum, stage) => sum + Number(stage.numCompletedTasks ?? 0), 0);
  return Math.min(100, (100 * done) / total);
}

const rpcTypes = protobuf.loadSync(path.join(protoDirectory, 'google-rpc.proto'));
const statusType = rpcTypes.lookupType('google.rpc.Status');
const errorInfoType = rpcTypes.lookupType('google.rpc.ErrorInfo');

/** The errorId Spark attaches to a failed call, in the rich status of its trailers. */
function errorIdOf(metadata: grpc.Metadata): string | undefined {
  const [details] = metadata.get('grpc-status-details-bin');
  if (!(details instanceof Buffer)) return undefined;
  const status = statusType.toObject(statusType.decode(details)) as {
    details?: Array<{ typeUrl?: string; value?: Uint8Array }>;
  };
  for (const item of status.details ?? []) {
    if (!item.typeUrl?.endsWith('google.rpc.ErrorInfo') || !item.value) continue;
    const info = errorInfoType.toObject(errorInfoType.decode(item.value)) as {
      metadata?: Record<string, string>;
    };
    if (info.metadata?.errorId) return info.metadata.errorId;
  }
  return undefined;
}

/** One result from the Arrow tables of its batches (each batch is a stream of its own). */
function concatTables(tables: Table[]): Table {
  if (tables.length === 0) return new Table();
  const [first, ...rest] = tables;
  return rest.length === 0 ? first! : first!.concat(...rest);
}
