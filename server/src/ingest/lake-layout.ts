import { lakeColumns, type DatasetContract } from '@medlake/shared';

/**
 * How a release's rows are laid out in its Parquet files, on every engine. Rows are sorted by
 * code, then event date, so that each row group holds a narrow range of codes: a query for
 * one code reads the few row groups whose statistics can hold it and skips the rest, and one
 * for a code in a month skips more still. Upload order would put every code in every group.
 */

/**
 * Row groups a release is cut into, at the least: with tens of codes, a one-code query then
 * reads about one group in this many (more where a code is common).
 */
const rowGroupsPerRelease = 64;

/** Fewer rows per group than this cost more in metadata and seeks than skipping saves. */
const minimumRowGroupRows = 2048;

/** More rows per group than this is more than a reader needs at once (about 1 M). */
const maximumRowGroupRows = 1_048_576;

/**
 * How many bytes of CSV make one byte of Parquet, at the least: de-identified columns are
 * fewer, and Parquet compresses the rest (the Synthea export shrinks about 48 times).
 * Estimating on the small side keeps files at or below the configured size.
 */
export const csvBytesPerParquetByte = 10;

/**
 * The lake columns a release is sorted by (its code column, then its main event date), and
 * those worth a bloom filter (the code: a point lookup among thousands of distinct values).
 */
export function releaseSort(contract: Pick<DatasetContract, 'columns' | 'datePolicy'>): {
  code?: string;
  eventDate?: string;
  orderBy: string[];
  bloomFilters: string[];
} {
  const columns = lakeColumns(contract);
  const code = columns.find((column) => column.role === 'code');
  // The event date ages are computed at is the one researchers filter on.
  const events = contract.columns.filter((column) => column.role === 'event_date');
  const event = events.find((column) => column.role === 'event_date' && column.ageReference);
  const date = columns.find((column) => column.source === (event ?? events[0])?.name);
  return {
    ...(code ? { code: code.name } : {}),
    ...(date ? { eventDate: date.name } : {}),
    orderBy: [code, date].flatMap((column) => (column ? [column.name] : [])),
    bloomFilters: code ? [code.name] : [],
  };
}

/** Rows per row group for a release of this many rows, within an engine's own ceiling. */
export function rowGroupRows(releaseRows: number, ceiling = maximumRowGroupRows): number {
  const wanted = Math.ceil(releaseRows / rowGroupsPerRelease);
  return Math.max(minimumRowGroupRows, Math.min(wanted, ceiling, maximumRowGroupRows));
}

/** Bytes per row group where an engine sizes groups by bytes (Spark's `parquet.block.size`). */
export function rowGroupBytes(parquetBytes: number): number {
  const wanted = Math.ceil(parquetBytes / rowGroupsPerRelease);
  return Math.max(16 * 1024, Math.min(wanted, 128 * 1024 * 1024));
}

/** How many files of about `fileBytes` a release written from `sourceBytes` of CSV needs. */
export function releaseFileCount(sourceBytes: number, fileBytes: number): number {
  return Math.max(1, Math.ceil(sourceBytes / (fileBytes * csvBytesPerParquetByte)));
}

/** More distinct codes than this in one file are not listed: the file is read for any code. */
export const maxListedCodes = 5000;
