import { AppError } from '../errors.ts';

/**
 * A statement that read a list of files one of which is not there: both engines fail it
 * (Spark reads the files one by one, spark-scans.ts), and it fails with this, never with fewer
 * rows. The engine's own message names the file (its hospital, release, bucket): the user
 * gets this plain line, and the engine's error is its cause, for the log.
 */
export function missingLakeFileError(cause: unknown): AppError {
  const error = new AppError(
    'lake_file_missing',
    'a file this query reads is missing from the lake, so it was not answered rather than answered with fewer rows: an administrator must restore the lake from its backup',
  );
  error.cause = cause;
  return error;
}
