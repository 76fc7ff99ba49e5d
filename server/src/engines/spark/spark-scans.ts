import { randomBytes } from 'node:crypto';
import { AppError } from '../../errors.ts';
import { releaseFileName } from '../../ingest/lake-keys.ts';
import type { ScanFiles } from '../sql-dialect.ts';
import { sparkPath } from './spark-files.ts';

/**
 * Parquet files a statement reads, bound to a name its SQL uses as a table. Spark reads them as
 * a data source given each path on its own, and fails when one is not there: read as one glob
 * (`parquet.\`{a,b}\``), Spark passes over an alternative that matches nothing, and a query would
 * answer with fewer rows than the catalog's releases hold.
 */
export type ParquetScan = {
  name: string;
  paths: string[];
  /**
   * The folder above the lake's partition folders (hospital=, month=, release=): Spark makes
   * them the scan's columns, as DuckDB's hive partitioning does.
   */
  basePath?: string;
};

/** How the dialect writes a scan into SQL until the engine binds it (bindScans). */
const scanPrefix = 'medlake_scan';
const scanPattern = /medlake_scan\.`([^`]*)`/g;

/** Characters a glob would read as a pattern, or that would end the list or the quoted text. */
const globCharacters = /[`{}[\]*?,\\]/;

/**
 * A table over the files, as the Spark dialect writes it: a placeholder that names them, for
 * the engine to bind before the statement runs. A location may end in `/*.parquet` (a release
 * folder's files); a folder that holds none fails the statement too.
 */
export function scanOf(scanned: readonly ScanFiles[]): string {
  if (scanned.length === 0) throw new AppError('internal', 'A scan of no files was asked for');
  // A release's folder is read as its files by name, which Spark checks one by one.
  const files = scanned.flatMap((file) =>
    typeof file === 'string'
      ? [file]
      : Array.from(
          { length: file.files },
          (_, index) => `${file.folder}/${releaseFileName(index)}`,
        ),
  );
  const paths = files.map((file) => {
    // A release folder's files come as one `*.parquet` at the end; nothing else may glob.
    if (globCharacters.test(file.replace(/\/\*\.parquet$/, ''))) {
      throw new AppError('internal', 'A lake path holds characters Spark globs would misread');
    }
    return sparkPath(file);
  });
  return `${scanPrefix}.\`${paths.join(',')}\``;
}

/**
 * A statement's scans, each replaced by a name of its own, and the files each name reads.
 * Files in the lake's partition folders get their hospital, month and release as columns.
 *
 * The names are the statement's alone: Spark Connect makes each a temporary view of the
 * session while the statement runs, and the server runs many statements at once on its one
 * session. With names shared between statements, one read another's files (a release outside
 * its user's grant) or found its view dropped (spark-concurrent-scans.test.ts).
 */
export function bindScans(sql: string): { sql: string; scans: ParquetScan[] } {
  const scans: ParquetScan[] = [];
  const statement = randomBytes(8).toString('hex');
  const bound = sql.replace(scanPattern, (_text, list: string) => {
    const paths = list.split(',');
    const name = `${scanPrefix}_${statement}_${scans.length}`;
    const bases = new Set(paths.map(lakeFolderOf));
    const [base] = bases;
    scans.push({ name, paths, ...(bases.size === 1 && base ? { basePath: base } : {}) });
    return name;
  });
  return { sql: bound, scans };
}

/** The folder above a file's partition folders, or '' for a file outside them. */
function lakeFolderOf(file: string): string {
  const at = file.indexOf('/hospital=');
  return at > 0 ? file.slice(0, at) : '';
}
