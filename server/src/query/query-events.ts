import { EventEmitter } from 'node:events';
import type { QueryJob } from '../catalog/query-jobs-repository.ts';

/**
 * Tells waiting requests in this process that a query job has reached its final state, so that
 * a long poll answers at once. Jobs finished by another process are seen by polling instead.
 */
const emitter = new EventEmitter();
emitter.setMaxListeners(0);

/** Announces the end of a job, with the job as it ended when the worker knows it. */
export function announceQueryFinished(id: string, job?: QueryJob): void {
  emitter.emit(id, job);
}

/**
 * Starts listening for the job's end: `finished` resolves when it is announced (with the
 * ended job, when known), or after `ms` (with nothing), whichever comes first. Listen before
 * looking at the job's state, or an end announced in between would be missed; `stop` when no
 * longer waiting.
 */
export function listenForQueryEnd(
  id: string,
  ms: number,
): { finished: Promise<QueryJob | undefined>; stop: () => void } {
  let stop = () => undefined as void;
  const finished = new Promise<QueryJob | undefined>((resolve) => {
    const done = (job?: QueryJob) => {
      clearTimeout(timer);
      emitter.off(id, done);
      resolve(job);
    };
    const timer = setTimeout(() => done(), ms);
    emitter.once(id, done);
    stop = () => done();
  });
  return { finished, stop };
}
