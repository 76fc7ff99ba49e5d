import { EventEmitter } from 'node:events';

/**
 * Tells waiting requests in this process that a query job has reached its final state, so that
 * a long poll answers at once. Jobs finished by another process are seen by polling instead.
 */
const emitter = new EventEmitter();
emitter.setMaxListeners(0);

export function announceQueryFinished(id: string): void {
  emitter.emit(id);
}

/**
 * Starts listening for the job's end: `finished` resolves when it is announced, or after `ms`,
 * whichever comes first. Listen before looking at the job's state, or an end announced in
 * between would be missed; `stop` when no longer waiting.
 */
export function listenForQueryEnd(
  id: string,
  ms: number,
): { finished: Promise<void>; stop: () => void } {
  let stop = () => undefined as void;
  const finished = new Promise<void>((resolve) => {
    const done = () => {
      clearTimeout(timer);
      emitter.off(id, done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    emitter.once(id, done);
    stop = done;
  });
  return { finished, stop };
}
