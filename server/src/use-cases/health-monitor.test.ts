import type { HealthReport } from '@medlake/shared';
import { describe, expect, it } from 'vitest';
import { createHealthMonitor } from './health-monitor.ts';

const report = (status: HealthReport['status']): HealthReport => ({
  status,
  version: 'test',
  components: {
    catalog: { status: 'ok', kind: 'pglite' },
    engine: { status: 'ok', kind: 'duckdb' },
    storage: status === 'ok' ? { status: 'ok', kind: 'local' } : { status: 'error', kind: 'local' },
  },
});

describe('the health monitor', () => {
  it('probes once for callers at the same time, reuses a fresh answer, answers from a stale one while it probes again, and waits once it is too old', async () => {
    let clock = 0;
    let probes = 0;
    let answer: HealthReport['status'] = 'ok';
    let release: (() => void) | undefined;
    const monitor = createHealthMonitor(
      async () => {
        probes += 1;
        await new Promise<void>((resolve) => (release = resolve));
        return report(answer);
      },
      { freshMs: 2_000, staleMs: 15_000, now: () => clock },
    );

    const first = Promise.all([monitor.current(), monitor.current()]);
    release?.();
    const [a, b] = await first;
    expect(probes).toBe(1);
    expect(a).toBe(b);
    expect(a).toMatchObject({ status: 'ok', checkedAt: new Date(0).toISOString() });

    clock = 1_000;
    expect(await monitor.current()).toBe(a);
    expect(probes).toBe(1);

    // Stale: answered at once from the last probe while a new one runs.
    answer = 'degraded';
    clock = 3_000;
    expect(await monitor.current()).toBe(a);
    expect(probes).toBe(2);
    release?.();
    await new Promise((resolve) => setImmediate(resolve));
    expect(await monitor.current()).toMatchObject({ status: 'degraded' });

    // Too old to answer from: the caller waits for the new probe.
    clock = 30_000;
    answer = 'ok';
    const waited = monitor.current();
    release?.();
    expect(await waited).toMatchObject({ status: 'ok', checkedAt: new Date(30_000).toISOString() });
    expect(probes).toBe(3);
  });
});
