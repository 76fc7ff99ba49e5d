import type { HealthReport } from '@medlake/shared';

export type HealthMonitor = {
  /** The latest report: probed now when there is none yet, else the last one while it is fresh. */
  current(): Promise<HealthReport>;
};

/**
 * Health as load balancers and monitors poll it: one probe of the parts at a time, whose answer
 * serves every caller until it is `freshMs` old; an older one is still answered at once while a
 * new probe runs, unless it is older than `staleMs`. Under load the probes wait behind the
 * queries for the catalog and the CPUs; the answer should not, or a busy server would look dead.
 * Each report says when it was taken (`checkedAt`).
 */
export function createHealthMonitor(
  probe: () => Promise<HealthReport>,
  options: { freshMs?: number; staleMs?: number; now?: () => number } = {},
): HealthMonitor {
  const freshMs = options.freshMs ?? 2_000;
  const staleMs = options.staleMs ?? 15_000;
  const now = options.now ?? Date.now;
  let last: { report: HealthReport; at: number } | undefined;
  let probing: Promise<HealthReport> | undefined;

  const refresh = () => {
    probing ??= (async () => {
      const at = now();
      try {
        const report = { ...(await probe()), checkedAt: new Date(at).toISOString() };
        last = { report, at };
        return report;
      } finally {
        probing = undefined;
      }
    })();
    return probing;
  };

  return {
    async current() {
      const age = last ? now() - last.at : Infinity;
      if (last && age < freshMs) return last.report;
      const next = refresh();
      if (last && age < staleMs) {
        next.catch(() => undefined);
        return last.report;
      }
      return next;
    },
  };
}
