import {
  compileMostRowsPerPatient,
  type CompileContext,
  type ResultColumn,
  type Statement,
} from './compile-query.ts';

/**
 * Percentiles for aggregate users are shown only where enough patients lie on each side
 * (disclosure.ts), judged with the most values one patient can have in a group. The catalog's
 * bound, the sum over the releases read of each one's most rows per patient, is free but loose
 * where a patient's rows sit in one release: with 48 monthly releases it is up to 48 times the
 * truth. Counting per patient in the query itself costs two window passes (×4 its time). The
 * most rows of one patient in the files read, counted once in a pass over the patient column
 * alone, lies between: exact for every group of every query over those files, and a fraction
 * of the cost.
 */

type RunRows = (statement: Statement) => Promise<Array<Record<string, unknown>>>;

/**
 * Counted figures per set of files. Releases never change once published (a new upload is a
 * new release), so the figure of a set stands; a row erased later would only lower it.
 */
const counted = new Map<string, number>();
const setsRemembered = 256;

/** The most rows one patient has in the files the query reads (`context.files.main`). */
export async function mostRowsPerPatientRead(
  context: CompileContext,
  run: RunRows,
): Promise<number> {
  const files = context.files.main;
  if (files.length === 0) return 0;
  const key = JSON.stringify([...files].sort());
  const known = counted.get(key);
  if (known !== undefined) return known;
  const [row] = await run(compileMostRowsPerPatient(context));
  const most = Number(row?.most ?? 0);
  // The oldest set counted goes first (a Map keeps the order of insertion).
  if (counted.size >= setsRemembered) counted.delete(counted.keys().next().value!);
  counted.set(key, most);
  return most;
}

/** The columns with each percentile's bound on one patient's values lowered to `most`. */
export function withMostRowsPerPatient(
  columns: readonly ResultColumn[],
  most: number,
): ResultColumn[] {
  return columns.map((column) => {
    const spread = column.spread;
    if (!spread || !('atMost' in spread.perPatient) || spread.perPatient.atMost <= most) {
      return column;
    }
    return { ...column, spread: { ...spread, perPatient: { atMost: most } } };
  });
}
