import { createHash } from 'node:crypto';
import { sql } from 'kysely';
import type { Catalog } from '../../catalog/catalog.ts';
import { AppError } from '../../errors.ts';

/** Within one process: the tail of each holder's queue of ledger checks, per catalog. */
const queues = new WeakMap<object, Map<string, Promise<void>>>();

/** The first of the two advisory lock keys: the ledger's own space (the second is the holder). */
const ledgerLockSpace = 0x1ed9e7;

/** How long a check waits for another server's check of the same holder before it fails. */
const lockTimeout = '120s';

/**
 * At most this many catalog connections of a server hold ledger locks at once (the pool has
 * ten); further checks wait for one, so that the checks never take every connection.
 */
const heldConnections = 4;
const connectionSlots = new WeakMap<object, { free: number; waiting: Array<() => void> }>();

async function takeSlot(db: object): Promise<() => void> {
  const slots = connectionSlots.get(db) ?? { free: heldConnections, waiting: [] };
  connectionSlots.set(db, slots);
  if (slots.free > 0) slots.free -= 1;
  else await new Promise<void>((resolve) => slots.waiting.push(resolve));
  return () => {
    const next = slots.waiting.shift();
    if (next) next();
    else slots.free += 1;
  };
}

/**
 * Serialises the ledger per holder and dataset: from reading what the holder was released to
 * recording what this result releases, no other result of that holder may be checked, or two
 * results submitted together would each be checked against the releases before both and both
 * released. Within a process a queue per holder; across servers on one PostgreSQL, a session
 * advisory lock held on its own connection (released by PostgreSQL if the server dies). The
 * embedded PGlite is opened by one process only, so its queue is the whole story.
 * Returns the function that lets the next check in.
 */
export async function lockReleaseLedger(
  catalog: Pick<Catalog, 'kind' | 'db'>,
  holder: string,
  datasetId: string,
): Promise<() => Promise<void>> {
  const key = `${holder}\u0000${datasetId}`;
  const local = queues.get(catalog.db) ?? new Map<string, Promise<void>>();
  queues.set(catalog.db, local);
  const before = local.get(key) ?? Promise.resolve();
  let letNextIn!: () => void;
  const mine = new Promise<void>((resolve) => (letNextIn = resolve));
  const tail = before.then(() => mine);
  local.set(key, tail);
  await before;

  let unlockDatabase: (() => void) | undefined;
  let session: Promise<void> | undefined;
  let freeSlot: (() => void) | undefined;
  if (catalog.kind === 'postgres') {
    const holderKey = createHash('sha256').update(key).digest().readInt32BE(0);
    try {
      freeSlot = await takeSlot(catalog.db);
      await new Promise<void>((locked, failed) => {
        session = catalog.db
          .connection()
          .execute(async (connection) => {
            await sql`select set_config('lock_timeout', ${lockTimeout}, false)`.execute(connection);
            try {
              await sql`select pg_advisory_lock(${ledgerLockSpace}::int, ${holderKey}::int)`.execute(
                connection,
              );
            } finally {
              await sql`select set_config('lock_timeout', '0', false)`.execute(connection);
            }
            locked();
            await new Promise<void>((resolve) => (unlockDatabase = resolve));
            await sql`select pg_advisory_unlock(${ledgerLockSpace}::int, ${holderKey}::int)`.execute(
              connection,
            );
          })
          .catch((error: unknown) => {
            failed(error);
          });
      });
    } catch (error) {
      freeSlot?.();
      letNextIn();
      if (local.get(key) === tail) local.delete(key);
      // PostgreSQL's lock_not_available: another server's check of this holder took too long.
      if ((error as { code?: string }).code === '55P03') {
        throw new AppError(
          'ledger_busy',
          'Another of your results is being checked against what you were released before; try again in a minute',
        );
      }
      throw error;
    }
  }

  let released = false;
  return async () => {
    if (released) return;
    released = true;
    unlockDatabase?.();
    await session;
    freeSlot?.();
    letNextIn();
    if (local.get(key) === tail) local.delete(key);
  };
}
