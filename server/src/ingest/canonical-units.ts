import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { z } from 'zod';

/**
 * The canonical unit of each code, as versioned configuration (config/units/loinc-units.json),
 * and what turns a value sent in another unit into it: a factor and an offset, worked out once
 * per (code, unit) pair of an upload, so that the engine converts the rows with one
 * multiplication each.
 */

const affineSchema = z
  .object({ factor: z.number(), offset: z.number(), source: z.string() })
  .strict();

const canonicalUnitsSchema = z
  .object({
    version: z.string().min(1),
    description: z.string(),
    /** Spellings common in exports that are not UCUM, and the UCUM code they stand for. */
    aliases: z.record(z.string(), z.string()),
    codes: z.record(
      z.string().min(1),
      z
        .object({
          unit: z.string().min(1),
          /** g/mol: lets UCUM convert between mass and molar concentrations. */
          molarMass: z.number().positive().optional(),
          /** The values a living person can have, in the canonical unit. */
          plausible: z
            .tuple([z.number(), z.number()])
            .refine(([low, high]) => low < high, 'the low end must be below the high end'),
          /** Conversions to the canonical unit that UCUM cannot express, by unit sent. */
          affine: z.record(z.string(), affineSchema).default({}),
        })
        .strict(),
    ),
  })
  .strict();

export type CanonicalUnits = z.infer<typeof canonicalUnitsSchema>;

const defaultFile = new URL('../../config/units/loinc-units.json', import.meta.url);
let loaded: CanonicalUnits | undefined;

/** Read once per process: a changed file takes effect at the next start. */
export function loadCanonicalUnits(file?: URL | string): CanonicalUnits {
  if (file) return canonicalUnitsSchema.parse(JSON.parse(readFileSync(file, 'utf8')));
  loaded ??= canonicalUnitsSchema.parse(JSON.parse(readFileSync(defaultFile, 'utf8')));
  return loaded;
}

/**
 * How the values of one (code, unit) pair reach the canonical unit:
 * - `converted`: canonical = value × factor + offset (a factor of 1 where the unit is already
 *   canonical);
 * - `unconvertible`: the code has a canonical unit, but this unit is not UCUM, is missing, or
 *   measures something else;
 * - `as_sent`: the code has no canonical unit, so its values are kept as they came.
 */
export type UnitConversion =
  | {
      status: 'converted';
      factor: number;
      offset: number;
      canonical: string;
      plausible: readonly [number, number];
    }
  | { status: 'unconvertible'; canonical: string; plausible: readonly [number, number] }
  | { status: 'as_sent' };

type UcumResult = { status: string; toVal?: number };
type UcumUtils = {
  convertUnitTo(
    from: string,
    value: number,
    to: string,
    options?: { molecularWeight?: number },
  ): UcumResult;
};

let ucum: UcumUtils | undefined;

/** NLM's UCUM library, loaded at the first conversion (it reads its unit tables then). */
function ucumUtils(): UcumUtils {
  if (!ucum) {
    // The package is CommonJS without types; only the one method used here is typed.
    const library = createRequire(import.meta.url)('@lhncbc/ucum-lhc') as {
      UcumLhcUtils: { getInstance(): UcumUtils };
    };
    ucum = library.UcumLhcUtils.getInstance();
  }
  return ucum;
}

/** What a UCUM code can be made of: printable ASCII without spaces, and not too long. */
const ucumShaped = /^[!-~]{1,60}$/;

/** Converts with UCUM, or undefined where UCUM cannot. */
function convertWithUcum(from: string, value: number, to: string, molarMass?: number) {
  if (!ucumShaped.test(from)) return undefined;
  const utils = ucumUtils();
  // The library prints a unit it fails to parse to the console; a unit is a hospital's text,
  // which stays out of the logs.
  const print = console.log;
  console.log = () => undefined;
  try {
    const result = utils.convertUnitTo(
      from,
      value,
      to,
      molarMass === undefined ? {} : { molecularWeight: molarMass },
    );
    return result.status === 'succeeded' && Number.isFinite(result.toVal)
      ? result.toVal
      : undefined;
  } finally {
    console.log = print;
  }
}

/** How a value of `code` sent in `unit` (null: no unit) becomes canonical. */
export function conversionOf(
  units: CanonicalUnits,
  code: string,
  unit: string | null,
): UnitConversion {
  const target = units.codes[code];
  if (!target) return { status: 'as_sent' };
  const unconvertible = {
    status: 'unconvertible',
    canonical: target.unit,
    plausible: target.plausible,
  } as const;
  const sent = unit?.trim();
  if (!sent) return unconvertible;
  const ucumCode = units.aliases[sent] ?? sent;
  const fixed = target.affine[ucumCode];
  const canonical = { canonical: target.unit, plausible: target.plausible };
  if (fixed)
    return { status: 'converted', factor: fixed.factor, offset: fixed.offset, ...canonical };
  if (ucumCode === target.unit) return { status: 'converted', factor: 1, offset: 0, ...canonical };
  // Every UCUM conversion between two units is affine (temperatures have an offset), so two
  // points give it whole.
  const zero = convertWithUcum(ucumCode, 0, target.unit, target.molarMass);
  const one = convertWithUcum(ucumCode, 1, target.unit, target.molarMass);
  if (zero === undefined || one === undefined) return unconvertible;
  return { status: 'converted', factor: one - zero, offset: zero, ...canonical };
}
