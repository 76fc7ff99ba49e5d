import { UnavailableError } from '../../errors.ts';

/**
 * An ingest that DuckDB could not finish for lack of memory or of disk for its temporary
 * files, as a plain message that names what to change. DuckDB's own text is never passed on:
 * it says nothing a steward or an operator can act on, and an engine message may quote data.
 */
export function resourceError(error: unknown, memoryLimit: string): UnavailableError | undefined {
  const message = error instanceof Error ? error.message : String(error);
  // A full temporary directory is reported as "Out of Memory" too, naming its own setting. A
  // full disk elsewhere ("No space left on device") is left to diskFullError (errors.ts).
  if (/max_temp_directory_size|could not write.*temp/i.test(message)) {
    return new UnavailableError(
      'disk_full',
      "the ingest ran out of disk space for its temporary files in MEDLAKE_HOME: free disk space on the server's data disk and upload the file again; nothing of it was published",
    );
  }
  if (/out of memory/i.test(message)) {
    return new UnavailableError(
      'out_of_memory',
      `the ingest ran out of memory within its limit (MEDLAKE_INGEST_MEMORY=${memoryLimit}): raise MEDLAKE_INGEST_MEMORY and upload the file again; nothing of it was published`,
    );
  }
  return undefined;
}
