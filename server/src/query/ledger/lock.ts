import { createHash } from 'node:crypto';
import { sql } from 'kysely';
import type { Catalog } from '../../catalog/catalog.ts';
import { AppError } from '../../errors.ts';

/** Within one process: the tail of each name's queue of ledger checks (a user or a holder), per catalog. */
const queues = new WeakMap<object, Map<string, Promise<void>>>();

/** The first of the two advisory lock keys: the ledger's own space (the second, a name's hash). */
const ledgerLockSpace = 0x1ed9e7;

/** How long a check waits for another server's check of the same user or holder before it fails. */
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
 * The locks of a check of `userId`'s result released to `holder`, in the order they are taken:
 * the user's (`user:ID`, which is also their holder's name when they hold their own grant),
 * then the holder's. A check reads the user's cells under every holder and writes cells of both
 * the user and the holder: two checks of one user under two holders wait for each other, as do
 * two users' checks under one holder. A check waits for a holder's lock only while holding its
 * user's, and never for a user's while holding a holder's, and every check takes the locks in
 * this order: no two checks can wait for each other.
 */
export function ledgerLockKeys(holder: string, userId: string): string[] {
  const user = `user:${userId}`;
  return holder === user ? [user] : [user, holder];
}

/**
 * Serialises the ledger per name (a user or a holder, ledgerLockKeys) and dataset: from reading
 * what was released before to recording what this result releases, no other check that takes
 * one of these names may run, or two results submitted together would each be checked against
 * the releases before both and both released. Within a process a queue per name; across
 * servers on one PostgreSQL, session advisory locks held on one connection of their own
 * (released by PostgreSQL if the server dies). The embedded PGlite is opened by one process
 * only, so its queues are the whole story. The names are locked in the order given.
 * Returns the function that lets the next checks in.
 */
export async function lockReleaseLedger(
  catalog: Pick<Catalog, 'kind' | 'db'>,
  names: readonly string[],
  datasetId: string,
): Promise<() => Promise<void>> {
  const local = queues.get(catalog.db) ?? new Map<string, Promise<void>>();
  queues.set(catalog.db, local);
  const keys = [...new Set(names)].map((name) => `${name}\u0000${datasetId}`);
  let letNextIn!: () => void;
  const mine = new Promise<void>((resolve) => (letNextIn = resolve));
  // Each name's queue in turn: this check joins the next queue only once it heads the one before.
  const tails = new Map<string, Promise<void>>();
  for (const key of keys) {
    const before = local.get(key) ?? Promise.resolve();
    const tail = before.then(() => mine);
    local.set(key, tail);
    tails.set(key, tail);
    await before;
  }
  const leaveQueues = () => {
    letNextIn();
    for (const [key, tail] of tails) if (local.get(key) === tail) local.delete(key);
  };

  let unlockDatabase: (() => void) | undefined;
  let session: Promise<void> | undefined;
  let freeSlot: (() => void) | undefined;
  if (catalog.kind === 'postgres') {
    const lockKeys = keys.map((key) => createHash('sha256').update(key).digest().readInt32BE(0));
    try {
      freeSlot = await takeSlot(catalog.db);
      await new Promise<void>((locked, failed) => {
        session = catalog.db
          .connection()
          .execute(async (connection) => {
            const taken: number[] = [];
            try {
              await sql`select set_config('lock_timeout', ${lockTimeout}, false)`.execute(
                connection,
              );
              try {
                for (const lockKey of lockKeys) {
                  await sql`select pg_advisory_lock(${ledgerLockSpace}::int, ${lockKey}::int)`.execute(
                    connection,
                  );
                  taken.push(lockKey);
                }
              } finally {
                await sql`select set_config('lock_timeout', '0', false)`.execute(connection);
              }
              locked();
              await new Promise<void>((resolve) => (unlockDatabase = resolve));
            } finally {
              // In reverse; also those taken before a later one timed out.
              for (const lockKey of taken.reverse()) {
                await sql`select pg_advisory_unlock(${ledgerLockSpace}::int, ${lockKey}::int)`.execute(
                  connection,
                );
              }
            }
          })
          .catch((error: unknown) => {
            failed(error);
          });
      });
    } catch (error) {
      freeSlot?.();
      leaveQueues();
      // PostgreSQL's lock_not_available: another server's check took too long.
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
    leaveQueues();
  };
}
