import type { Readable } from 'node:stream';

/**
 * The first line that holds a line break of another kind than the file's own, outside quotes:
 * a carriage return in a file whose lines end in a line feed, or one not followed by a line
 * feed in a file of CR LF lines. RFC 4180 allows neither, and a strict CSV reader stops there
 * without saying where. The file's kind is its header line's. Returns the 1-based line, or
 * undefined when there is none.
 */
export async function firstStrayLineBreak(file: Readable): Promise<number | undefined> {
  let line = 1;
  let quoted = false;
  let crlf: boolean | undefined;
  let pendingCr = false;
  try {
    for await (const chunk of file as AsyncIterable<Buffer>) {
      for (const byte of chunk) {
        if (pendingCr) {
          pendingCr = false;
          if (byte === 0x0a) {
            crlf ??= true;
            if (!crlf) return line;
            line += 1;
            continue;
          }
          // A carriage return alone, outside quotes.
          return line;
        }
        if (byte === 0x22) quoted = !quoted;
        else if (quoted) {
          if (byte === 0x0a) line += 1;
        } else if (byte === 0x0d) pendingCr = true;
        else if (byte === 0x0a) {
          crlf ??= false;
          if (crlf) return line;
          line += 1;
        }
      }
    }
    return pendingCr ? line : undefined;
  } finally {
    file.destroy();
  }
}
