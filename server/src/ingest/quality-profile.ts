import {
  convertedMeasure,
  lakeColumns,
  type CodeProfile,
  type DatasetContract,
} from '@medlake/shared';

/**
 * The figures of the data-quality report that are read back from a release's Parquet files,
 * as SQL both engines run: they differ only in the few expressions below.
 */
export type ProfileSql = {
  /** The release's files, as a FROM clause. */
  files: string;
  quote(name: string): string;
  asText(expression: string): string;
  asDouble(expression: string): string;
  /** The 25th, 50th and 75th percentiles, interpolated between the nearest values. */
  quartiles(expression: string): string;
};

/**
 * Rows, patients and the empty count of every lake column, in one row; and the most rows one
 * patient has, which bounds how many values of a percentile one patient can decide (disclosure
 * control reads it from the catalog instead of counting it per query).
 */
export function totalsQuery(contract: DatasetContract, sql: ProfileSql): string {
  const nullCounts = lakeColumns(contract).map(
    (column, index) => `count(*) - count(${sql.quote(column.name)}) AS null_${index}`,
  );
  const mostRows = `(SELECT max(n) FROM (SELECT count(*) AS n FROM ${sql.files} GROUP BY patient) AS per_patient)`;
  return `SELECT count(*) AS total_rows, count(DISTINCT patient) AS total_patients, ${mostRows} AS max_rows_per_patient, ${nullCounts.join(', ')} FROM ${sql.files}`;
}

/**
 * The totals row read as the report's figures, and `maxRowsPerPatient`, which is for the
 * catalog only: it is one patient's figure, not for the report.
 */
export function totalsOf(contract: DatasetContract, totals: Record<string, unknown> | undefined) {
  const rows = Number(totals?.total_rows ?? 0);
  return {
    rows,
    patients: Number(totals?.total_patients ?? 0),
    maxRowsPerPatient: Number(totals?.max_rows_per_patient ?? 0),
    columns: lakeColumns(contract).map((column, index) => ({
      name: column.name,
      nullRate: rows === 0 ? 0 : Number(totals?.[`null_${index}`] ?? 0) / rows,
    })),
  };
}

/** Per code: its label and usual unit, counts and the measure's spread; none without codes. */
export function codesQuery(contract: DatasetContract, sql: ProfileSql): string | undefined {
  const lake = lakeColumns(contract);
  const code = lake.find((column) => column.role === 'code');
  if (!code) return undefined;
  const column = (role: string, numeric = false) => {
    const found = lake.find(
      (candidate) => candidate.role === role && (!numeric || candidate.type !== 'varchar'),
    );
    return found ? sql.quote(found.name) : undefined;
  };
  const [label, unit, measure] = [column('code_label'), column('unit'), column('measure', true)];
  // A measure converted to canonical units flags its implausible values in the lake.
  const converted = convertedMeasure(contract);
  const flag = converted ? sql.quote(`${converted.name}_flag`) : undefined;
  return `
    SELECT ${sql.asText(sql.quote(code.name))} AS code,
      ${label ? sql.asText(`any_value(${label})`) : 'NULL'} AS label,
      ${unit ? sql.asText(`mode(${unit})`) : 'NULL'} AS unit,
      count(*) AS count,
      ${measure ? `count(${measure})` : '0'} AS numeric_count,
      ${measure ? sql.asDouble(`min(${measure})`) : 'NULL'} AS min,
      ${measure ? sql.asDouble(`max(${measure})`) : 'NULL'} AS max,
      ${measure ? sql.asDouble(`avg(${measure})`) : 'NULL'} AS mean,
      ${measure ? sql.quartiles(measure) : 'NULL'} AS q,
      ${flag ? `count(CASE WHEN ${flag} = 'implausible' THEN 1 END)` : 'NULL'} AS implausible_count
    FROM ${sql.files} GROUP BY 1 ORDER BY count(*) DESC, 1 LIMIT 5000`;
}

/** A row of the codes query as the report's code profile. */
export function codeProfileOf(row: Record<string, unknown>): CodeProfile {
  const q = row.q as ArrayLike<number | null> | null;
  const number = (value: unknown) => (value === null || value === undefined ? null : Number(value));
  return {
    code: String(row.code),
    label: (row.label as string | null) ?? null,
    unit: (row.unit as string | null) ?? null,
    count: Number(row.count),
    numericCount: Number(row.numeric_count),
    min: number(row.min),
    max: number(row.max),
    mean: number(row.mean),
    q1: number(q?.[0]),
    median: number(q?.[1]),
    q3: number(q?.[2]),
  };
}
