import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';
import { shareConstraints } from './regions.ts';
import {
  defaultSearchBounds,
  searchCombinations,
  type Candidate,
  type SearchBounds,
  type SearchCell,
} from './search.ts';

/** A search as sent to a thread: the cells' own fields, nothing else, and the bounds. */
export type SearchRequest = { news: SearchCell[]; earlier: SearchCell[]; bounds: SearchBounds };

/** A thread's answer: cells named by their place in the request (news first, then earlier). */
export type SearchReply =
  | {
      ok: true;
      candidates: Array<{
        terms: Array<readonly [number, 1 | -1]>;
        combination: Candidate['combination'];
      }>;
      evaluated: number;
      unexamined: number[];
    }
  | { ok: false; error: { name: string; message: string; stack?: string } };

export type SearchResult = ReturnType<typeof searchCombinations>;

type Task = {
  request: SearchRequest;
  resolve: (reply: SearchReply) => void;
  reject: (error: Error) => void;
};
type Thread = { worker: Worker; task?: Task; idleTimer?: NodeJS.Timeout };

/**
 * A small pool of worker threads for the ledger's set search: at most `size` threads, each
 * running one search at a time, the others queued in order. A thread idle for `idleMs` is
 * stopped, so that an idle server holds none; a busy one keeps the process alive (it is
 * waited for), an idle one does not. A thread that dies (out of memory, a crash) fails the
 * search it was running with an error that names no cell, and the next search starts another.
 * Written here rather than taken from a library: one kind of task, one or two threads, and
 * these few rules are all it needs.
 */
export class SearchThreads {
  readonly #file: URL;
  readonly #size: number;
  readonly #idleMs: number;
  readonly #threads = new Set<Thread>();
  #idle: Thread[] = [];
  readonly #queue: Task[] = [];
  #completed = 0;

  constructor(file: URL, options: { size: number; idleMs: number }) {
    this.#file = file;
    this.#size = Math.max(1, options.size);
    this.#idleMs = options.idleMs;
  }

  /** Searches finished (answered, whether with a result or with the search's own error). */
  get completed(): number {
    return this.#completed;
  }

  /** Threads running now, busy or idle. */
  get threads(): number {
    return this.#threads.size;
  }

  run(request: SearchRequest): Promise<SearchReply> {
    return new Promise((resolve, reject) => {
      this.#queue.push({ request, resolve, reject });
      this.#dispatch();
    });
  }

  /** Stops every thread; searches running or queued fail. */
  async close(): Promise<void> {
    const stopped = new Error('The release ledger’s search threads were stopped');
    for (const task of this.#queue.splice(0)) task.reject(stopped);
    await Promise.all([...this.#threads].map((thread) => this.#drop(thread, stopped)));
  }

  #dispatch(): void {
    while (this.#queue.length > 0) {
      let thread = this.#idle.pop();
      if (!thread) {
        if (this.#threads.size >= this.#size) return;
        thread = this.#start();
      }
      clearTimeout(thread.idleTimer);
      const task = this.#queue.shift()!;
      thread.task = task;
      thread.worker.ref();
      try {
        thread.worker.postMessage(task.request);
      } catch (error) {
        // A request that cannot be copied to the thread: its own failure, the thread is fine.
        thread.task = undefined;
        task.reject(error as Error);
        this.#rest(thread);
      }
    }
  }

  #start(): Thread {
    const worker = new Worker(this.#file, { name: 'medlake-ledger-search' });
    const thread: Thread = { worker };
    this.#threads.add(thread);
    worker.on('message', (reply: SearchReply) => {
      // An answer that crossed the thread's stop: its search has failed already.
      if (!this.#threads.has(thread)) return;
      const task = thread.task;
      thread.task = undefined;
      this.#completed += 1;
      this.#rest(thread);
      task?.resolve(reply);
      this.#dispatch();
    });
    // An error the thread did not catch (it could not load, ran out of memory), then its exit.
    worker.on('error', (error) => void this.#drop(thread, error));
    worker.on('exit', (code) => {
      void this.#drop(
        thread,
        new Error(`The release ledger’s search thread stopped (exit code ${code})`),
      );
    });
    return thread;
  }

  #rest(thread: Thread): void {
    thread.worker.unref();
    this.#idle.push(thread);
    thread.idleTimer = setTimeout(() => void this.#drop(thread), this.#idleMs);
    thread.idleTimer.unref();
  }

  /** Takes the thread out of the pool and stops it, failing its search with `error` if any. */
  async #drop(thread: Thread, error?: Error): Promise<void> {
    if (!this.#threads.delete(thread)) return;
    clearTimeout(thread.idleTimer);
    this.#idle = this.#idle.filter((other) => other !== thread);
    const task = thread.task;
    thread.task = undefined;
    if (task) task.reject(error ?? new Error('The release ledger’s search thread was stopped'));
    // Searches waiting for a thread get a new one.
    this.#dispatch();
    await thread.worker.terminate();
  }
}

/**
 * Threads for the ledger's search: one beside the main thread on a machine of two cores, at
 * most two. The search is one thread's work; the main thread and the engine keep the rest.
 */
export const searchThreadCount = Math.max(1, Math.min(2, availableParallelism() - 1));

let shared: SearchThreads | undefined;

/** The process's threads for the ledger's search, started on first use. */
export function ledgerSearchThreads(): SearchThreads {
  shared ??= new SearchThreads(new URL('./search-worker.ts', import.meta.url), {
    size: searchThreadCount,
    idleMs: 60_000,
  });
  return shared;
}

const errorTypes: Record<string, new (message: string) => Error> = {
  Error,
  EvalError,
  RangeError,
  ReferenceError,
  SyntaxError,
  TypeError,
  URIError,
};

/** The search's own error, thrown again in this thread as the same kind with the same message. */
function errorOf(reply: Extract<SearchReply, { ok: false }>['error']): Error {
  const Type = Object.hasOwn(errorTypes, reply.name) ? errorTypes[reply.name]! : Error;
  const error = new Type(reply.message);
  if (error.name !== reply.name) error.name = reply.name;
  if (reply.stack !== undefined) error.stack = reply.stack;
  return error;
}

/**
 * `searchCombinations` run in a worker thread (ledgerSearchThreads), so that a long search
 * leaves the main thread, and every other request, free: the same candidates in the same
 * order, naming the caller's own cells, the same count of combinations evaluated and the same
 * cells unexamined; an error of the search is thrown here as the same kind with the same
 * message. Equal constraints are made one object before the cells are copied to the thread,
 * which then copies each once (the releases read are most often the same hundreds of ids).
 */
export async function searchInWorker(
  newCells: readonly SearchCell[],
  earlierCells: readonly SearchCell[],
  bounds: SearchBounds = defaultSearchBounds,
  threads: SearchThreads = ledgerSearchThreads(),
): Promise<SearchResult> {
  // Nothing to search: the search returns at once, with nothing to send.
  if (newCells.length === 0) return searchCombinations(newCells, earlierCells, bounds);
  const cells = [...newCells, ...earlierCells];
  const boxes = shareConstraints(cells.map((cell) => cell.box));
  const copy = (cell: SearchCell, index: number): SearchCell => ({
    id: cell.id,
    box: boxes[index]!,
    rows: cell.rows,
    patients: cell.patients,
    earlier: cell.earlier,
  });
  const reply = await threads.run({
    news: newCells.map((cell, index) => copy(cell, index)),
    earlier: earlierCells.map((cell, index) => copy(cell, newCells.length + index)),
    bounds: { neighbours: bounds.neighbours, combinations: bounds.combinations },
  });
  if (!reply.ok) throw errorOf(reply.error);
  return {
    candidates: reply.candidates.map(({ terms, combination }) => ({
      terms: terms.map(([at, coefficient]) => ({ cell: cells[at]!, coefficient })),
      combination,
    })),
    evaluated: reply.evaluated,
    unexamined: reply.unexamined.map((at) => cells[at]!),
  };
}
