import { stringify } from 'csv-stringify/sync';
import type { Actor, AuditEntry, AuditFilter, AuditVerification } from '../../audit/audit-log.ts';
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

/** Checks the whole chain; the check is on record too, with its result. */
export async function verifyAuditLog(platform: Platform, actor: Actor): Promise<AuditVerification> {
  const result = await platform.audit.verify();
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
