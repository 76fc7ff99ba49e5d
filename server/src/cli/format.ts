import type { IngestProblem } from '@medlake/shared';

/**
 * `file:line:column (header): message`, the shape editors and terminals link to; without a
 * file name, `line 12, column 3 (header): message`.
 */
export function formatProblem(fileName: string | null, problem: IngestProblem): string {
  const header = problem.header ? ` (${problem.header})` : '';
  if (fileName !== null) {
    const where = [fileName, problem.line, problem.line !== null ? problem.column : null]
      .filter((part) => part !== null)
      .join(':');
    return `${where}${header}: ${problem.message}`;
  }
  const where = [
    problem.line !== null ? `line ${problem.line}` : 'file',
    problem.column !== null ? `column ${problem.column}` : null,
  ]
    .filter((part) => part !== null)
    .join(', ');
  return `${where}${header}: ${problem.message}`;
}

export function formatBytes(bytes: number): string {
  if (bytes < 1024) return `${bytes} B`;
  const units = ['KB', 'MB', 'GB', 'TB'];
  let value = bytes / 1024;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit += 1;
  }
  return `${value.toFixed(1)} ${units[unit]}`;
}

/** Prints rows as aligned columns. */
export function printTable(rows: Array<Record<string, string | number>>): void {
  if (rows.length === 0) return;
  const headers = Object.keys(rows[0] ?? {});
  const widths = headers.map((header) =>
    Math.max(header.length, ...rows.map((row) => String(row[header] ?? '').length)),
  );
  const line = (cells: string[]) =>
    cells
      .map((cell, index) => cell.padEnd(widths[index] ?? 0))
      .join('  ')
      .trimEnd();
  console.log(line(headers));
  for (const row of rows) console.log(line(headers.map((header) => String(row[header] ?? ''))));
}
