import type { AuditLog } from './audit-log.ts';

/** What a probe was: a refusal, a not-found on an object's id, or input the API refused. */
export type ProbeKind = 'refused' | 'notFound' | 'invalid';

type Tally = {
  userId: string | null;
  name: string | null;
  source: string;
  from: Date;
  counts: Record<ProbeKind, number>;
  routes: Map<string, number>;
};

/** The routes named in one entry; the rest are only counted. */
const maxRoutes = 10;

/**
 * Requests that look like probing (refused, a not-found on someone else's object, a spec the
 * API refused), counted per user (or per address, for no user) and written as one
 * `access.probe` entry per window: a flood of them makes one entry, not thousands.
 */
export function createProbeRecorder(audit: AuditLog, windowMs: number) {
  const tallies = new Map<string, Tally>();

  const flush = async (now = new Date()) => {
    const done = [...tallies.values()];
    tallies.clear();
    for (const tally of done) {
      const routes = [...tally.routes].sort((a, b) => b[1] - a[1]);
      await audit.record({
        action: 'access.probe',
        actor: { userId: tally.userId, name: tally.name, source: tally.source },
        target: tally.userId ? `user:${tally.userId}` : `source:${tally.source}`,
        outcome: 'denied',
        details: {
          from: tally.from.toISOString(),
          to: now.toISOString(),
          ...tally.counts,
          routes: Object.fromEntries(routes.slice(0, maxRoutes)),
          otherRoutes: Math.max(0, routes.length - maxRoutes),
        },
      });
    }
  };

  const timer = setInterval(() => {
    flush().catch(() => undefined);
  }, windowMs);
  timer.unref();

  return {
    /** Counts one probing request. */
    note(
      actor: { userId: string | null; name: string | null; source: string },
      kind: ProbeKind,
      route: string,
    ): void {
      const key = actor.userId ?? `source:${actor.source}`;
      let tally = tallies.get(key);
      if (!tally) {
        tally = {
          ...actor,
          from: new Date(),
          counts: { refused: 0, notFound: 0, invalid: 0 },
          routes: new Map(),
        };
        tallies.set(key, tally);
      }
      tally.counts[kind] += 1;
      tally.routes.set(route, (tally.routes.get(route) ?? 0) + 1);
    },
    /** Writes what was counted so far (at the end of each window, and when the server stops). */
    flush,
    async close(): Promise<void> {
      clearInterval(timer);
      await flush();
    },
  };
}

export type ProbeRecorder = ReturnType<typeof createProbeRecorder>;
