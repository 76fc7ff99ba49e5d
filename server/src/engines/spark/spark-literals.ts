import { AppError } from '../../errors.ts';

/** A Spark Connect literal as the protocol's JSON form (64-bit integers as text). */
export type Literal =
  | { null: DataType }
  | { boolean: boolean }
  | { long: string }
  | { double: number }
  | { string: string }
  | { timestamp: string }
  | { array: { elementType: DataType; elements: Literal[] } };

type DataType =
  | { null: object }
  | { boolean: object }
  | { long: object }
  | { double: object }
  | { string: object }
  | { timestamp: object };

/**
 * A statement parameter as a typed literal. Whole numbers go as 64-bit integers (Spark widens
 * them where a column is a double), other numbers as doubles; lists become arrays of one type.
 */
export function literalOf(value: unknown): Literal {
  if (value === null || value === undefined) return { null: { null: {} } };
  if (typeof value === 'boolean') return { boolean: value };
  if (typeof value === 'bigint') return { long: value.toString() };
  if (typeof value === 'number') {
    if (!Number.isFinite(value)) {
      throw new AppError('VALIDATION_FAILED', 'A query value must be a finite number');
    }
    return Number.isSafeInteger(value) ? { long: String(value) } : { double: value };
  }
  if (typeof value === 'string') return { string: value };
  if (value instanceof Date) return { timestamp: String(BigInt(value.getTime()) * 1000n) };
  if (Array.isArray(value)) {
    let elements = value.map(literalOf);
    // A list of whole and other numbers is a list of doubles.
    if (elements.some((element) => 'double' in element)) {
      elements = elements.map((element) =>
        'long' in element ? { double: Number(element.long) } : element,
      );
    }
    return { array: { elementType: arrayTypeOf(elements), elements } };
  }
  throw new AppError('INTERNAL', `No Spark literal for a ${typeof value} value`);
}

/** The one type of an array's elements (strings for a list of nulls only). */
function arrayTypeOf(elements: Literal[]): DataType {
  const kinds = new Set(elements.map((element) => Object.keys(element)[0]));
  kinds.delete('null');
  if (kinds.size === 0) return { string: {} };
  if (kinds.size > 1) {
    throw new AppError('VALIDATION_FAILED', 'A list of query values must all be of one type');
  }
  const [kind] = kinds;
  if (kind === 'array') throw new AppError('INTERNAL', 'Nested lists are not query values');
  return { [kind!]: {} } as DataType;
}
