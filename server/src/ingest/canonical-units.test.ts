import { describe, expect, it } from 'vitest';
import { conversionOf, loadCanonicalUnits } from './canonical-units.ts';

const units = loadCanonicalUnits();
const apply = (code: string, unit: string | null, value: number) => {
  const conversion = conversionOf(units, code, unit);
  if (conversion.status !== 'converted') throw new Error(`${code} ${unit}: ${conversion.status}`);
  return value * conversion.factor + conversion.offset;
};

describe('canonical units', () => {
  it('converts glucose from mmol/L to mg/dL with its molar mass', () => {
    // 5.55 mmol/L × 180.156 g/mol = 99.99 mg/dL
    expect(apply('2345-7', 'mmol/L', 5.55)).toBeCloseTo(99.9866, 3);
    expect(apply('2345-7', 'mg/dL', 100)).toBe(100);
    expect(apply('2345-7', 'mg/dl', 100)).toBe(100);
  });

  it('converts creatinine from µmol/L and temperature from °F', () => {
    expect(apply('2160-0', 'µmol/L', 88.4)).toBeCloseTo(1.0, 2);
    expect(apply('8310-5', '[degF]', 98.6)).toBeCloseTo(37, 6);
    expect(apply('8310-5', '°F', 212)).toBeCloseTo(100, 6);
  });

  it('converts HbA1c from mmol/mol with the IFCC-NGSP master equation, not as a plain ratio', () => {
    // 48 mmol/mol is the diagnostic threshold of 6.5 %.
    expect(apply('4548-4', 'mmol/mol', 48)).toBeCloseTo(6.543, 3);
  });

  it('says which units cannot be converted, and which codes have no canonical unit', () => {
    expect(conversionOf(units, '2345-7', 'kg').status).toBe('unconvertible');
    expect(conversionOf(units, '2345-7', 'furlongs').status).toBe('unconvertible');
    expect(conversionOf(units, '2345-7', null).status).toBe('unconvertible');
    expect(conversionOf(units, 'no-such-code', 'mg/dL').status).toBe('as_sent');
  });

  it('has a canonical unit that UCUM knows for every configured code', () => {
    for (const [code, target] of Object.entries(units.codes)) {
      expect(conversionOf(units, code, target.unit)).toMatchObject({
        status: 'converted',
        factor: 1,
      });
      expect(conversionOf(units, code, 'not a unit').status, code).toBe('unconvertible');
    }
  });
});
