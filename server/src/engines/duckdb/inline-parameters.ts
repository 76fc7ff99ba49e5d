import type { SqlStatement } from '../types.ts';
import { quoteLiteral } from './duckdb-sql.ts';

/**
 * The statement with each `$n` replaced by its value as a typed literal, or undefined when a
 * value has no exact literal (then the statement runs with its parameters).
 *
 * Why: a statement with parameters is three calls into DuckDB (extract, prepare, run), and
 * DuckDB binds it twice, once without the values' types and again with them; each bind of
 * `read_parquet` reads the files' footers again. On the one-partition query of bench:query
 * that was 11–17 ms of engine time against 9–14 ms with literals (1 M-row lake, load 8).
 *
 * Each literal has the type the parameter would have had (@duckdb/node-api's typeForValue:
 * INTEGER or BIGINT for whole numbers, DOUBLE otherwise, VARCHAR, BOOLEAN, HUGEINT), so the
 * statement means the same. Strings become standard SQL literals, in which only a doubled quote
 * is special: a value cannot end its literal. `$` inside quoted literals and identifiers of
 * the statement is left alone.
 */
export function inlineParameters(statement: SqlStatement): string | undefined {
  const literals: string[] = [];
  for (const value of statement.params) {
    const literal = literalOf(value);
    if (literal === undefined) return undefined;
    literals.push(literal);
  }
  if (literals.length === 0) return statement.sql;
  const { sql } = statement;
  const used = new Set<number>();
  let out = '';
  let index = 0;
  while (index < sql.length) {
    const char = sql[index]!;
    if (char === "'" || char === '"') {
      const end = closingQuote(sql, index, char);
      out += sql.slice(index, end);
      index = end;
    } else if (
      char === '$' &&
      /[0-9]/.test(sql[index + 1] ?? '') &&
      !/\w/.test(sql[index - 1] ?? '')
    ) {
      let end = index + 1;
      while (/[0-9]/.test(sql[end] ?? '')) end += 1;
      const number = Number(sql.slice(index + 1, end));
      const literal = literals[number - 1];
      used.add(number);
      // A placeholder without a value: let DuckDB say so, as it would with parameters.
      if (literal === undefined) return undefined;
      out += literal;
      index = end;
    } else {
      out += char;
      index += 1;
    }
  }
  // A value no placeholder takes: DuckDB refuses it, and says so through the parameters.
  return used.size === literals.length ? out : undefined;
}

/** Where a quoted literal or identifier that starts at `start` ends (past its closing quote). */
function closingQuote(sql: string, start: number, quote: string): number {
  let index = start + 1;
  while (index < sql.length) {
    if (sql[index] === quote) {
      // A doubled quote stands for one and does not end it.
      if (sql[index + 1] === quote) index += 2;
      else return index + 1;
    } else index += 1;
  }
  return sql.length;
}

/** A whole number no BIGINT holds: beyond ±2^63 (every such double is a whole number). */
export function isBeyondBigint(value: unknown): boolean {
  return (
    typeof value === 'number' && Number.isFinite(value) && (value >= 2 ** 63 || value < -(2 ** 63))
  );
}

function literalOf(value: unknown): string | undefined {
  if (value === null) return 'NULL';
  switch (typeof value) {
    case 'boolean':
      return value ? 'TRUE' : 'FALSE';
    case 'number':
      if (Number.isSafeInteger(value)) {
        const type = value >= -2_147_483_648 && value <= 2_147_483_647 ? 'INTEGER' : 'BIGINT';
        return `CAST(${quoteLiteral(String(value))} AS ${type})`;
      }
      // A whole number past 2^53 is exact as a BIGINT while it fits one (its parameter's type);
      // beyond BIGINT it is the DOUBLE the engine binds it as (duckdb-engine.ts), as 1e308 is.
      if (Number.isInteger(value) && !isBeyondBigint(value)) {
        return `CAST(${quoteLiteral(BigInt(value).toString())} AS BIGINT)`;
      }
      // String(value) is the shortest text that reads back as the same double.
      return Number.isFinite(value) ? `CAST(${quoteLiteral(String(value))} AS DOUBLE)` : undefined;
    case 'bigint':
      return `CAST(${quoteLiteral(value.toString())} AS HUGEINT)`;
    case 'string':
      // DuckDB's parser ends a string at a NUL character; such a value keeps its parameter.
      return value.includes('\0') ? undefined : `CAST(${quoteLiteral(value)} AS VARCHAR)`;
    default:
      return undefined;
  }
}
