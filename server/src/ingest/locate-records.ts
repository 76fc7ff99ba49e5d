import type { Readable } from 'node:stream';
import { parse } from 'csv-parse';

const lineBreak = /\r\n|\r|\n/g;

/**
 * The line each accepted record starts on. An engine reports row problems by the record's
 * position among the rows it accepted; this reads the file once more, as CSV, to turn those
 * positions into lines even where values span lines or blank lines were skipped. Rejected
 * lines (which the engine did not accept) are passed over. Reads only as far as the last
 * record wanted, and only on the path where a file has problems.
 *
 * Where the file stops being readable as CSV (a quote never closed), the records before that
 * point are located and the others left out; the caller estimates their lines.
 */
export async function locateRecords(
  file: Readable,
  delimiter: string,
  records: readonly number[],
  rejectedLines: ReadonlySet<number>,
): Promise<Map<number, number>> {
  const wanted = new Set(records);
  // Not Math.max(...records): an upload's CSV of problems may ask for 100,000 records, more
  // arguments than a call takes.
  const last = records.reduce((highest, record) => Math.max(highest, record), -1);
  const lines = new Map<number, number>();
  const parser = file.pipe(
    parse({
      delimiter,
      bom: true,
      from_line: 2,
      skip_empty_lines: true,
      relax_column_count: true,
      relax_quotes: true,
      raw: true,
    }),
  );
  let accepted = -1;
  // Lines are counted from the raw text of each record, which holds the blank lines skipped
  // before it and its own line breaks; csv-parse's own line counter drifts on CRLF files.
  let line = 2;
  try {
    for await (const { raw } of parser as AsyncIterable<{ raw: string }>) {
      const leading = raw.match(/^(\r\n|\r|\n)*/)?.[0].match(lineBreak)?.length ?? 0;
      const start = line + leading;
      line += raw.match(lineBreak)?.length ?? 0;
      if (rejectedLines.has(start)) continue;
      accepted += 1;
      if (wanted.has(accepted)) lines.set(accepted, start);
      if (accepted >= last) break;
    }
  } catch {
    // Unreadable from here on: what was located stands.
  } finally {
    parser.destroy();
    file.destroy();
  }
  return lines;
}
