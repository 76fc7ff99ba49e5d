import { convertedMeasure } from '@medlake/shared';
import { conversionOf, type CanonicalUnits, type UnitConversion } from './canonical-units.ts';
import type { SourceColumn } from './ingest-plan.ts';
import type { IngestDialect, IngestRunner } from './ingest-runner.ts';
import { columnAlias } from './ingest-rules.ts';

/**
 * Values to canonical units, in the engine: the distinct (code, unit) pairs of an upload are
 * read once, each gets a factor and an offset here (canonical-units.ts), and the engine joins
 * that small table to every row, so that converting a row is one multiplication and an
 * addition, however many rows there are.
 */

/** The columns a conversion reads, and what the contract does with values it cannot trust. */
export type UnitColumns = {
  measure: SourceColumn;
  code: SourceColumn;
  /** Undefined where the file has no unit column: every value of a converted code then lacks one. */
  unit: SourceColumn | undefined;
  onUnconvertible: 'flag' | 'reject_row';
  onImplausible: 'flag' | 'reject_row';
};

/** The conversion of a plan's kept columns, if its contract converts a measure. */
export function unitColumnsOf(kept: readonly SourceColumn[]): UnitColumns | undefined {
  const contract = { columns: kept.flatMap((source) => (source.column ? [source.column] : [])) };
  const measure = convertedMeasure(contract);
  const find = (test: (source: SourceColumn) => boolean) => kept.find(test);
  const measureSource = find((source) => source.column === measure);
  const code = find((source) => source.column?.role === 'code');
  if (!measure?.canonicalUnits || !measureSource || !code) return undefined;
  return {
    measure: measureSource,
    code,
    unit: find((source) => source.column?.role === 'unit'),
    ...measure.canonicalUnits,
  };
}

/** SQL of a row's conversion; `s` is the row, `u` its line of `unit_conversions`. */
export class UnitSql {
  readonly #columns: UnitColumns;
  readonly #sql: IngestDialect;

  constructor(columns: UnitColumns, sql: IngestDialect) {
    this.#columns = columns;
    this.#sql = sql;
  }

  /** The unit as sent (NULL where the file has none). */
  unitSent(row = 's'): string {
    const unit = this.#columns.unit;
    return unit ? `${row}.${columnAlias(unit)}` : `CAST(NULL AS ${this.#sql.typeName('varchar')})`;
  }

  /** The number as sent; NULL for a result in words. */
  valueSent(row = 's'): string {
    const measure = this.#columns.measure;
    const value = `${row}.${columnAlias(measure)}`;
    return measure.readAs === 'varchar' ? `TRY_CAST(${value} AS DOUBLE)` : value;
  }

  /** Joins a row to its conversion: every row has exactly one, since the pairs are the upload's. */
  join(row = 's'): string {
    return `LEFT JOIN unit_conversions u ON ${row}.${columnAlias(this.#columns.code)} IS NOT DISTINCT FROM u.code AND ${this.unitSent(row)} IS NOT DISTINCT FROM u.unit`;
  }

  // The conversions are written so that a row costs little: an unconvertible pair has no
  // factor, so its canonical value is NULL by arithmetic; a code without a range has none, so
  // no comparison holds.

  /** The value in the code's canonical unit: NULL where the unit could not be converted. */
  canonical(row = 's'): string {
    return `(${this.valueSent(row)} * u.factor + u.shift)`;
  }

  /** Whether a number was sent in a unit that cannot be converted. */
  unconvertible(row = 's'): string {
    return `(u.factor IS NULL AND ${this.valueSent(row)} IS NOT NULL)`;
  }

  /** Whether a converted value lies outside the range a living person can have. */
  implausible(row = 's'): string {
    const value = this.canonical(row);
    return `(${value} < u.low OR ${value} > u.high)`;
  }

  /** Why the value is not to be trusted, as the lake's `<measure>_flag` column says it. */
  flag(row = 's'): string {
    return `CASE WHEN ${this.unconvertible(row)} THEN 'unit_unconvertible' WHEN ${this.implausible(row)} THEN 'implausible' END`;
  }

  /**
   * The unit the lake keeps, the unit of the canonical value: the code's canonical unit where
   * it has one (also where this value could not be converted, and is empty), else as sent.
   */
  unit(row = 's'): string {
    return `coalesce(u.canonical, ${this.unitSent(row)})`;
  }
}

/** One (code, unit) pair of an upload, with the numbers sent in it. */
export type UnitPair = { code: string; unit: string | null; values: number };

/**
 * Makes `unit_conversions (code, unit, status, factor, shift, canonical, low, high)` for the
 * pairs of `accepted`, and returns the pairs whose unit cannot be converted, with the numbers
 * sent in each. The upload's codes and units stay in the engine: the pairs are numbered there,
 * and only the numbers and medlake's own figures are written into SQL.
 */
export async function registerUnitConversions(
  runner: IngestRunner,
  columns: UnitColumns,
  units: CanonicalUnits,
): Promise<UnitPair[]> {
  const sql = new UnitSql(columns, runner.dialect);
  const code = `s.${columnAlias(columns.code)}`;
  await runner.table(
    'unit_pairs',
    `SELECT row_number() OVER (ORDER BY code, unit) AS pair, code, unit, sent_values FROM (
      SELECT ${code} AS code, ${sql.unitSent()} AS unit, count(${sql.valueSent()}) AS sent_values
      FROM accepted s GROUP BY 1, 2) d`,
  );
  const pairs = await runner.rows<{
    pair: bigint | number;
    code: string | null;
    unit: string | null;
    sent_values: bigint | number;
  }>('SELECT pair, code, unit, sent_values FROM unit_pairs');
  const number = (value: number | undefined) =>
    value === undefined ? 'CAST(NULL AS DOUBLE)' : `CAST(${String(value)} AS DOUBLE)`;
  const text = (value: string | undefined) =>
    value === undefined
      ? `CAST(NULL AS ${runner.dialect.typeName('varchar')})`
      : runner.dialect.literal(value);
  const line = (pair: number, conversion: UnitConversion | undefined) => {
    const status = conversion?.status;
    const converted = conversion?.status === 'converted' ? conversion : undefined;
    const asSent = status === 'as_sent';
    const target = conversion && conversion.status !== 'as_sent' ? conversion : undefined;
    return `SELECT ${pair} AS pair, ${text(status)} AS status,
      ${number(converted?.factor ?? (asSent ? 1 : undefined))} AS factor,
      ${number(converted?.offset ?? (asSent ? 0 : undefined))} AS shift,
      ${text(target?.canonical)} AS canonical,
      ${number(target?.plausible[0])} AS low, ${number(target?.plausible[1])} AS high`;
  };
  const conversions = pairs.map((pair) => ({
    ...pair,
    conversion:
      pair.code === null
        ? ({ status: 'as_sent' } as const)
        : conversionOf(units, String(pair.code), pair.unit === null ? null : String(pair.unit)),
  }));
  // An upload without rows still gets the table, typed, so that the later statements run.
  const lines =
    conversions.length > 0
      ? conversions.map((pair) => line(Number(pair.pair), pair.conversion))
      : [line(0, undefined)];
  await runner.table(
    'unit_conversions',
    `SELECT p.code AS code, p.unit AS unit, c.status, c.factor, c.shift, c.canonical, c.low, c.high
    FROM unit_pairs p JOIN (${lines.join('\nUNION ALL\n')}) c ON p.pair = c.pair`,
  );
  return conversions
    .filter((pair) => pair.conversion.status === 'unconvertible' && Number(pair.sent_values) > 0)
    .map((pair) => ({
      // A row without a code has nothing to convert to, so its pair is never unconvertible.
      code: String(pair.code),
      unit: pair.unit === null ? null : String(pair.unit),
      values: Number(pair.sent_values),
    }))
    .sort((a, b) => b.values - a.values);
}
