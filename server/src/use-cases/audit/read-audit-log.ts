import { stringify } from 'csv-stringify/sync';
import type { Actor, AuditEntry, AuditFilter, AuditVerification } from '../../audit/audit-log.ts';
import type { Suspect } from '@medlake/shared';
import { usersRepository } from '../../catalog/users-repository.ts';
import type { Platform } from '../../platform.ts';

/** An export holds at most this many entries; narrow the filter for more. */
export const maxAuditExportEntries = 100_000;

/**
 * Reading the audit log is itself audited: who looked, with which filter. The caller has been
 * allowed to read it (policy: admins and auditors, and the operator at the CLI).
 */
export async function searchAuditLog(
  platform: Platform,
  actor: Actor,
  filter: AuditFilter,
  page: { page: number; pageSize: number },
): Promise<{ entries: AuditEntry[]; total: number }> {
  await platform.audit.record({ action: 'audit.read', actor, details: { filter, page } });
  return platform.audit.search(filter, page);
}

/** The entries matching a filter as CSV, oldest first, for a spreadsheet or an archive. */
export async function exportAuditLog(
  platform: Platform,
  actor: Actor,
  filter: AuditFilter,
): Promise<{ csv: string; entries: number; truncated: boolean }> {
  await platform.audit.record({
    action: 'audit.read',
    actor,
    details: { filter, export: 'csv' },
  });
  const { entries, total } = await platform.audit.search(filter, {
    page: 1,
    pageSize: maxAuditExportEntries,
  });
  const csv = stringify(
    entries.reverse().map((entry) => ({
      ...entry,
      at: entry.at.toISOString(),
      details: JSON.stringify(entry.details),
    })),
    {
      header: true,
      columns: [
        'seq',
        'at',
        'actor',
        'actorId',
        'action',
        'target',
        'outcome',
        'source',
        'details',
        'hash',
      ],
      // A cell a spreadsheet would run as a formula is written as text.
      cast: { string: defuseFormula },
    },
  );
  return { csv, entries: entries.length, truncated: total > entries.length };
}

/**
 * Checks the whole chain, then the chain against the signed checkpoints kept outside
 * MEDLAKE_HOME: a chain edited and re-signed with the audit key passes the first check but not
 * the second. The first entry that cannot be trusted is named; the check is on record too.
 */
export async function verifyAuditLog(platform: Platform, actor: Actor): Promise<AuditVerification> {
  const chain = await platform.audit.verify();
  const checkpoints = await platform.auditCheckpoints.check((seqs) =>
    platform.audit.hashesAt(seqs),
  );
  let result: AuditVerification;
  if (chain.ok && checkpoints.ok) {
    result = { ...chain, checkpoints: checkpoints.checkpoints, lastCheckpoint: checkpoints.last };
  } else if (!checkpoints.ok && (chain.ok || checkpoints.firstBad < chain.firstBad)) {
    // The earlier of the two: past the last good checkpoint nothing is vouched for, even
    // entries whose HMACs fit (whoever holds the audit key can make them fit).
    result = {
      ok: false,
      entries: checkpoints.firstBad - 1,
      firstBad: checkpoints.firstBad,
      problem: chain.ok ? checkpoints.problem : `${checkpoints.problem}; ${chain.problem}`,
    };
  } else {
    result = chain;
  }
  // The head as verified, so that a later rewrite of it is caught too.
  if (result.ok) await platform.auditCheckpoints.write(result.head);
  await platform.audit.record({
    action: 'audit.verify',
    actor,
    outcome: result.ok ? 'success' : 'failure',
    details: result.ok
      ? { entries: result.entries, head: result.head }
      : { firstBad: result.firstBad, problem: result.problem },
  });
  return result;
}

function defuseFormula(value: string): string {
  return /^[=+\-@\t\r]/.test(value) ? `'${value}` : value;
}

/** How many probe entries a period may hold for the summary; the busiest are what matter. */
const maxProbeEntries = 10_000;

/**
 * Who probed, over a period: the `access.probe` entries summed per user (or address, for no
 * user), most first, with users named as they are now. Reading it is on record.
 */
export async function listSuspiciousActivity(
  platform: Platform,
  actor: Actor,
  period: { from: Date; to: Date },
): Promise<Suspect[]> {
  await platform.audit.record({ action: 'audit.read', actor, details: { suspicious: period } });
  const { entries } = await platform.audit.search(
    { action: 'access.probe', from: period.from, to: period.to },
    { page: 1, pageSize: maxProbeEntries },
  );
  const byWho = new Map<string, Suspect & { sourceSet: Set<string> }>();
  for (const entry of entries) {
    const key = entry.actorId ?? `source:${entry.source}`;
    const at = entry.at.toISOString();
    let suspect = byWho.get(key);
    if (!suspect) {
      suspect = {
        userId: entry.actorId,
        who: entry.actor ?? entry.source,
        sources: [],
        sourceSet: new Set(),
        refused: 0,
        notFound: 0,
        invalid: 0,
        total: 0,
        windows: 0,
        firstAt: at,
        lastAt: at,
        routes: {},
      };
      byWho.set(key, suspect);
    }
    const count = (name: string) => {
      const value = entry.details[name];
      return typeof value === 'number' ? value : 0;
    };
    suspect.refused += count('refused');
    suspect.notFound += count('notFound');
    suspect.invalid += count('invalid');
    suspect.total = suspect.refused + suspect.notFound + suspect.invalid;
    suspect.windows += 1;
    suspect.sourceSet.add(entry.source);
    if (at < suspect.firstAt) suspect.firstAt = at;
    if (at > suspect.lastAt) suspect.lastAt = at;
    const routes = entry.details.routes;
    if (routes && typeof routes === 'object') {
      for (const [route, n] of Object.entries(routes as Record<string, unknown>)) {
        if (typeof n === 'number') suspect.routes[route] = (suspect.routes[route] ?? 0) + n;
      }
    }
  }
  const emails = await usersRepository(platform.catalog.db).emailsOf(
    [...byWho.values()].flatMap((suspect) => (suspect.userId ? [suspect.userId] : [])),
  );
  return [...byWho.values()]
    .map(({ sourceSet, ...suspect }) => ({
      ...suspect,
      who: (suspect.userId && emails.get(suspect.userId)) || suspect.who,
      sources: [...sourceSet].sort(),
      routes: Object.fromEntries(
        Object.entries(suspect.routes)
          .sort((a, b) => b[1] - a[1])
          .slice(0, 10),
      ),
    }))
    .sort((a, b) => b.total - a.total || a.who.localeCompare(b.who));
}
