import { DataType, type Field, type Table, type Vector } from 'apache-arrow';

/**
 * An Arrow result as rows of JSON values, the way the DuckDB engine gives them, so that the
 * service above sees the same values from either engine: 64-bit integers and decimals as text,
 * dates as YYYY-MM-DD, timestamps as "YYYY-MM-DD HH:MM:SS[.fff]", lists and structs nested.
 */
export function rowsOf(table: Table): Array<Record<string, unknown>> {
  const fields = table.schema.fields;
  const columns = fields.map((field) => table.getChild(field.name) as Vector);
  const rows: Array<Record<string, unknown>> = [];
  for (let index = 0; index < table.numRows; index++) {
    const row: Record<string, unknown> = {};
    fields.forEach((field, column) => {
      row[field.name] = jsonOf(columns[column]!.get(index), field.type);
    });
    rows.push(row);
  }
  return rows;
}

function jsonOf(value: unknown, type: DataType): unknown {
  if (value === null || value === undefined) return null;
  if (DataType.isInt(type)) {
    return type.bitWidth === 64 ? String(value) : Number(value);
  }
  if (DataType.isFloat(type)) return Number(value);
  if (DataType.isDecimal(type)) return decimalText(value as Uint32Array, type.scale);
  if (DataType.isDate(type)) return new Date(millisecondsOf(value)).toISOString().slice(0, 10);
  if (DataType.isTimestamp(type)) return timestampText(millisecondsOf(value));
  if (DataType.isList(type)) {
    const child = type.children[0] as Field;
    return [...(value as Iterable<unknown>)].map((item) => jsonOf(item, child.type));
  }
  if (DataType.isStruct(type)) {
    const struct = value as Record<string, unknown>;
    return Object.fromEntries(
      type.children.map((child) => [child.name, jsonOf(struct[child.name], child.type)]),
    );
  }
  if (DataType.isBool(type)) return Boolean(value);
  return typeof value === 'bigint' ? String(value) : value;
}

/** Arrow gives dates and timestamps as epoch milliseconds (or Dates, in some versions). */
function millisecondsOf(value: unknown): number {
  return value instanceof Date ? value.getTime() : Number(value);
}

/** Milliseconds since the epoch as DuckDB writes a timestamp: no zone, no trailing zeros. */
function timestampText(milliseconds: number): string {
  const iso = new Date(milliseconds).toISOString(); // 2021-06-01T10:20:30.500Z
  const [date, time] = iso.slice(0, -1).split('T');
  const [whole, fraction] = time!.split('.');
  const kept = fraction?.replace(/0+$/, '');
  return `${date} ${whole}${kept ? `.${kept}` : ''}`;
}

/** A 128-bit two's-complement decimal (four 32-bit words, little end first) as text. */
function decimalText(words: Uint32Array, scale: number): string {
  let unscaled = 0n;
  for (let index = words.length - 1; index >= 0; index--) {
    unscaled = (unscaled << 32n) | BigInt(words[index]!);
  }
  const bits = BigInt(words.length * 32);
  if (unscaled >> (bits - 1n)) unscaled -= 1n << bits;
  const negative = unscaled < 0n;
  const digits = (negative ? -unscaled : unscaled).toString().padStart(scale + 1, '0');
  const text = scale > 0 ? `${digits.slice(0, -scale)}.${digits.slice(-scale)}` : digits;
  return negative ? `-${text}` : text;
}
