import { expect } from 'vitest';

export type AttemptTally = Map<string, { tried: number; succeeded: number }>;

/**
 * The tally of an attack suite: each attempt is counted under its class and checked to have
 * failed; the suite prints the tally for the docs.
 */
export function attemptTally(): {
  tally: AttemptTally;
  attempt(kind: string, succeeded: boolean, what: string): void;
} {
  const tally: AttemptTally = new Map();
  return {
    tally,
    attempt(kind, succeeded, what) {
      const entry = tally.get(kind) ?? { tried: 0, succeeded: 0 };
      entry.tried += 1;
      if (succeeded) entry.succeeded += 1;
      tally.set(kind, entry);
      expect(succeeded, `${kind}: ${what}`).toBe(false);
    },
  };
}
