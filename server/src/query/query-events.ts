import { EventEmitter } from 'node:events';

/**
 * Tells waiting requests in this process that a query job has reached its final state, so that
 * a long poll answers at once. Jobs finished by another process are seen by polling instead.
 */
const finished = new EventEmitter();
finished.setMaxListeners(0);

export function announceQueryFinished(id: string): void {
  finished.emit(id);
}

/** Resolves when the job is announced as finished, or after `ms`, whichever comes first. */
export function queryFinishedOrTimeout(id: string, ms: number): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      clearTimeout(timer);
      finished.off(id, done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    finished.once(id, done);
  });
}
