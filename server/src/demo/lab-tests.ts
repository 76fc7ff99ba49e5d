/**
 * Laboratory tests and vital signs the demo generator draws from: real LOINC codes and
 * names, their usual units, and a plausible adult distribution (mean and standard deviation).
 */
export type NumericTest = {
  code: string;
  name: string;
  category: 'laboratory' | 'vital-signs';
  unit: string;
  mean: number;
  sd: number;
  decimals: number;
  min: number;
  /**
   * How hospitals that report in SI units send it: value × factor + offset, in `unit` (the
   * inverse of the conversion in server/config/units), so that the demo has both.
   */
  si?: { unit: string; factor: number; offset?: number; decimals: number };
};

export type TextTest = {
  code: string;
  name: string;
  category: 'survey' | 'laboratory';
  answers: string[];
};

export const numericTests: NumericTest[] = [
  {
    code: '2345-7',
    name: 'Glucose [Mass/volume] in Serum or Plasma',
    category: 'laboratory',
    unit: 'mg/dL',
    mean: 100,
    sd: 22,
    decimals: 0,
    min: 40,
    si: { unit: 'mmol/L', factor: 10 / 180.156, decimals: 1 },
  },
  {
    code: '4548-4',
    name: 'Hemoglobin A1c/Hemoglobin.total in Blood',
    category: 'laboratory',
    unit: '%',
    mean: 5.8,
    sd: 0.9,
    decimals: 1,
    min: 4,
    // IFCC mmol/mol from NGSP %: the master equation, inverted.
    si: { unit: 'mmol/mol', factor: 1 / 0.09148, offset: -2.152 / 0.09148, decimals: 0 },
  },
  {
    code: '718-7',
    name: 'Hemoglobin [Mass/volume] in Blood',
    category: 'laboratory',
    unit: 'g/dL',
    mean: 14,
    sd: 1.6,
    decimals: 1,
    min: 6,
  },
  {
    code: '6690-2',
    name: 'Leukocytes [#/volume] in Blood by Automated count',
    category: 'laboratory',
    unit: '10*3/uL',
    mean: 7.2,
    sd: 2.1,
    decimals: 1,
    min: 1,
  },
  {
    code: '777-3',
    name: 'Platelets [#/volume] in Blood by Automated count',
    category: 'laboratory',
    unit: '10*3/uL',
    mean: 255,
    sd: 60,
    decimals: 0,
    min: 20,
  },
  {
    code: '2160-0',
    name: 'Creatinine [Mass/volume] in Serum or Plasma',
    category: 'laboratory',
    unit: 'mg/dL',
    mean: 0.95,
    sd: 0.25,
    decimals: 2,
    min: 0.3,
    si: { unit: 'umol/L', factor: 10_000 / 113.12, decimals: 0 },
  },
  {
    code: '3094-0',
    name: 'Urea nitrogen [Mass/volume] in Serum or Plasma',
    category: 'laboratory',
    unit: 'mg/dL',
    mean: 14,
    sd: 4,
    decimals: 0,
    min: 3,
  },
  {
    code: '2951-2',
    name: 'Sodium [Moles/volume] in Serum or Plasma',
    category: 'laboratory',
    unit: 'mmol/L',
    mean: 140,
    sd: 2.5,
    decimals: 0,
    min: 120,
  },
  {
    code: '2823-3',
    name: 'Potassium [Moles/volume] in Serum or Plasma',
    category: 'laboratory',
    unit: 'mmol/L',
    mean: 4.2,
    sd: 0.4,
    decimals: 1,
    min: 2.5,
  },
  {
    code: '1742-6',
    name: 'Alanine aminotransferase [Enzymatic activity/volume] in Serum or Plasma',
    category: 'laboratory',
    unit: 'U/L',
    mean: 24,
    sd: 10,
    decimals: 0,
    min: 5,
  },
  {
    code: '2093-3',
    name: 'Cholesterol [Mass/volume] in Serum or Plasma',
    category: 'laboratory',
    unit: 'mg/dL',
    mean: 190,
    sd: 38,
    decimals: 0,
    min: 90,
    si: { unit: 'mmol/L', factor: 10 / 386.654, decimals: 2 },
  },
  {
    code: '2571-8',
    name: 'Triglyceride [Mass/volume] in Serum or Plasma',
    category: 'laboratory',
    unit: 'mg/dL',
    mean: 140,
    sd: 55,
    decimals: 0,
    min: 30,
  },
  {
    code: '2085-9',
    name: 'Cholesterol in HDL [Mass/volume] in Serum or Plasma',
    category: 'laboratory',
    unit: 'mg/dL',
    mean: 52,
    sd: 13,
    decimals: 0,
    min: 15,
  },
  {
    code: '18262-6',
    name: 'Cholesterol in LDL [Mass/volume] in Serum or Plasma by Direct assay',
    category: 'laboratory',
    unit: 'mg/dL',
    mean: 112,
    sd: 32,
    decimals: 0,
    min: 30,
  },
  {
    code: '8480-6',
    name: 'Systolic blood pressure',
    category: 'vital-signs',
    unit: 'mm[Hg]',
    mean: 124,
    sd: 16,
    decimals: 0,
    min: 80,
  },
  {
    code: '8462-4',
    name: 'Diastolic blood pressure',
    category: 'vital-signs',
    unit: 'mm[Hg]',
    mean: 79,
    sd: 10,
    decimals: 0,
    min: 40,
  },
  {
    code: '8867-4',
    name: 'Heart rate',
    category: 'vital-signs',
    unit: '/min',
    mean: 74,
    sd: 11,
    decimals: 0,
    min: 35,
  },
  {
    code: '29463-7',
    name: 'Body weight',
    category: 'vital-signs',
    unit: 'kg',
    mean: 79,
    sd: 17,
    decimals: 1,
    min: 35,
  },
  {
    code: '8302-2',
    name: 'Body height',
    category: 'vital-signs',
    unit: 'cm',
    mean: 170,
    sd: 10,
    decimals: 1,
    min: 140,
  },
  {
    code: '39156-5',
    name: 'Body mass index (BMI) [Ratio]',
    category: 'vital-signs',
    unit: 'kg/m2',
    mean: 27,
    sd: 5,
    decimals: 1,
    min: 15,
  },
  {
    code: '8310-5',
    name: 'Body temperature',
    category: 'vital-signs',
    unit: 'Cel',
    mean: 36.8,
    sd: 0.4,
    decimals: 1,
    min: 35,
  },
];

export const textTests: TextTest[] = [
  {
    code: '72166-2',
    name: 'Tobacco smoking status',
    category: 'survey',
    answers: [
      'Never smoker',
      'Former smoker',
      'Current every day smoker',
      'Current some day smoker',
    ],
  },
  {
    code: '5778-6',
    name: 'Color of Urine',
    category: 'laboratory',
    answers: ['Yellow', 'Straw', 'Amber', 'Dark yellow'],
  },
];
