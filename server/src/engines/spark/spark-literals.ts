import { AppError } from '../../errors.ts';

/** A Spark Connect literal as the protocol's JSON form (64-bit integers as text). */
export type Literal =
  | { null: DataType }
  | { boolean: boolean }
  | { integer: number }
  | { long: string }
  | { double: number }
  | { string: string }
  | { timestamp: string }
  | { array: { elementType: DataType; elements: Literal[] } };

type DataType =
  | { null: object }
  | { boolean: object }
  | { integer: object }
  | { long: object }
  | { double: object }
  | { string: object }
  | { timestamp: object };

/** The range of Spark's INT, the type a LIMIT or OFFSET must have. */
const int32 = { min: -(2 ** 31), max: 2 ** 31 - 1 };

/**
 * A statement parameter as a typed literal. Whole numbers go as INT when they fit (Spark widens
 * them where a column is a BIGINT or DOUBLE, and LIMIT takes nothing else), else as BIGINT;
 * other numbers as doubles; lists become arrays of one type.
 */
export function literalOf(value: unknown): Literal {
  if (value === null || value === undefined) return { null: { null: {} } };
  if (typeof value === 'boolean') return { boolean: value };
  if (typeof value === 'bigint') return { long: value.toString() };
  if (typeof value === 'number') {
    if (!Number.isFinite(value)) {
      throw new AppError('invalid_spec', 'A query value must be a finite number');
    }
    if (!Number.isSafeInteger(value)) return { double: value };
    return value >= int32.min && value <= int32.max ? { integer: value } : { long: String(value) };
  }
  if (typeof value === 'string') return { string: value };
  if (value instanceof Date) return { timestamp: String(BigInt(value.getTime()) * 1000n) };
  if (Array.isArray(value)) {
    let elements = value.map(literalOf);
    // A list of numbers has the widest type among them.
    if (elements.some((element) => 'double' in element)) {
      elements = elements.map((element) =>
        'long' in element
          ? { double: Number(element.long) }
          : 'integer' in element
            ? { double: element.integer }
            : element,
      );
    } else if (elements.some((element) => 'long' in element)) {
      elements = elements.map((element) =>
        'integer' in element ? { long: String(element.integer) } : element,
      );
    }
    return { array: { elementType: arrayTypeOf(elements), elements } };
  }
  throw new AppError('internal', `No Spark literal for a ${typeof value} value`);
}

/** The one type of an array's elements (strings for a list of nulls only). */
function arrayTypeOf(elements: Literal[]): DataType {
  const kinds = new Set(elements.map((element) => Object.keys(element)[0]));
  kinds.delete('null');
  if (kinds.size === 0) return { string: {} };
  if (kinds.size > 1) {
    throw new AppError('invalid_spec', 'A list of query values must all be of one type');
  }
  const [kind] = kinds;
  if (kind === 'array') throw new AppError('internal', 'Nested lists are not query values');
  return { [kind!]: {} } as DataType;
}
