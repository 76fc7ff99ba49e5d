import { randomUUID } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import { once } from 'node:events';
import { Faker, base, en, en_US } from '@faker-js/faker';
import { numericTests, textTests } from './lab-tests.ts';

/** The header of a generated export: what a hospital's lab system might dump. */
export const exportHeader = [
  'patient_mrn',
  'ssn',
  'first_name',
  'last_name',
  'birth_date',
  'sex',
  'race',
  'ethnicity',
  'street_address',
  'city',
  'state',
  'zip',
  'phone',
  'email',
  'encounter_id',
  'collected_at',
  'test_category',
  'loinc_code',
  'test_name',
  'result_value',
  'result_unit',
  'comment',
] as const;

export type GenerateOptions = {
  hospitals: number;
  months: number;
  /** Rows per hospital and month. */
  rows: number;
  outDir: string;
  /** The first month, YYYY-MM. */
  firstMonth?: string;
  /** Share of rows (0 to 1) with a realistic defect that validation must catch. */
  dirtyShare?: number;
  seed?: number;
};

export type GeneratedExport = { hospital: string; month: string; file: string; rows: number };

type Patient = {
  mrn: string;
  ssn: string;
  firstName: string;
  lastName: string;
  birthDate: string;
  sex: string;
  race: string;
  ethnicity: string;
  street: string;
  city: string;
  zip: string;
  phone: string;
  email: string;
};

const races = ['white', 'black', 'asian', 'native', 'other'];
const raceWeights = [0.62, 0.13, 0.07, 0.02, 0.16];
// Comments free of words that are also common names, so that the free-text scan keeps them.
const comments = [
  'Hemolyzed sample; result could be affected',
  'Repeat requested',
  'Fasting sample',
  'Critical value phoned to clinic',
];
// Three-digit ZIP areas of under 20,000 people (Safe Harbor): some patients live there.
const sparseZip3 = ['036', '059', '692', '821', '893'];

/** The id and display name of the generated hospital number `index` (0-based). */
export function demoHospital(index: number): { id: string; name: string } {
  const id = `h${String(index + 1).padStart(2, '0')}`;
  const names = [
    'Riverside General Hospital',
    'St. Elmo Medical Center',
    'Lakeview University Hospital',
    'Northgate Community Hospital',
    'Harbor County Hospital',
  ];
  return { id, name: names[index % names.length] ?? `Hospital ${index + 1}` };
}

/**
 * Writes realistic monthly exports, one CSV per hospital and month, with the identifiers a
 * real export carries. Patients recur across months; a share of rows can be dirty.
 */
export async function generateExports(options: GenerateOptions): Promise<GeneratedExport[]> {
  const faker = new Faker({ locale: [en_US, en, base] });
  faker.seed(options.seed ?? 20261126);
  await mkdir(options.outDir, { recursive: true });
  const months = monthSequence(options.firstMonth ?? '2024-01', options.months);
  const generated: GeneratedExport[] = [];

  for (let h = 0; h < options.hospitals; h += 1) {
    const hospital = demoHospital(h).id;
    const state = faker.location.state();
    // Enough patients that each has a handful of results a month.
    const patients = Array.from({ length: Math.max(12, Math.round(options.rows / 12)) }, () =>
      createPatient(faker, hospital, new Date(`${months[0]}-01T00:00:00Z`)),
    );
    for (const month of months) {
      const file = path.join(options.outDir, `${hospital}-${month}.csv`);
      await writeExport(faker, file, {
        patients,
        state,
        month,
        rows: options.rows,
        dirtyShare: options.dirtyShare ?? 0,
        // Every other hospital reports in SI units, as many outside the US do.
        siUnits: h % 2 === 1,
      });
      generated.push({ hospital, month, file, rows: options.rows });
    }
  }
  return generated;
}

function createPatient(faker: Faker, hospital: string, bornBefore: Date): Patient {
  const sex = faker.helpers.arrayElement(['F', 'M']);
  const firstName = faker.person.firstName(sex === 'F' ? 'female' : 'male');
  const lastName = faker.person.lastName();
  const zip =
    faker.number.float() < 0.03
      ? `${faker.helpers.arrayElement(sparseZip3)}${faker.string.numeric(2)}`
      : faker.location.zipCode('#####');
  return {
    mrn: `${hospital.toUpperCase()}-${faker.string.numeric(8)}`,
    ssn: `9${faker.string.numeric(2)}-${faker.string.numeric(2)}-${faker.string.numeric(4)}`,
    firstName,
    lastName,
    birthDate: faker.date
      .birthdate({ mode: 'age', min: 1, max: 99, refDate: bornBefore })
      .toISOString()
      .slice(0, 10),
    sex,
    race: faker.helpers.weightedArrayElement(
      races.map((value, i) => ({ value, weight: raceWeights[i] ?? 0 })),
    ),
    ethnicity: faker.number.float() < 0.18 ? 'hispanic' : 'nonhispanic',
    street: faker.location.streetAddress(),
    city: faker.location.city(),
    zip,
    phone: faker.phone.number({ style: 'national' }),
    email: faker.internet.email({ firstName, lastName }).toLowerCase(),
  };
}

type ExportSpec = {
  patients: Patient[];
  state: string;
  month: string;
  rows: number;
  dirtyShare: number;
  /** Results in SI units where the test has them (mmol/L glucose, µmol/L creatinine …). */
  siUnits: boolean;
};

async function writeExport(faker: Faker, file: string, spec: ExportSpec): Promise<void> {
  const out = createWriteStream(file);
  const [year, month] = spec.month.split('-').map(Number) as [number, number];
  const monthStart = Date.UTC(year, month - 1, 1);
  const monthLength = Date.UTC(year, month, 1) - monthStart;
  const encounters = new Map<Patient, string[]>();
  let buffer = `${exportHeader.join(',')}\n`;

  for (let row = 0; row < spec.rows; row += 1) {
    const patient = faker.helpers.arrayElement(spec.patients);
    let visits = encounters.get(patient);
    if (!visits)
      encounters.set(
        patient,
        (visits = Array.from({ length: faker.number.int({ min: 1, max: 3 }) }, () => randomUUID())),
      );
    const collectedAt =
      new Date(monthStart + Math.floor(faker.number.float() * monthLength))
        .toISOString()
        .slice(0, 19) + 'Z';
    const useText = faker.number.float() < 0.06;
    const test = useText
      ? faker.helpers.arrayElement(textTests)
      : faker.helpers.arrayElement(numericTests);
    const conventional =
      'answers' in test
        ? faker.helpers.arrayElement(test.answers)
        : numericValue(faker, test.mean, test.sd, test.min, test.decimals);
    const si = spec.siUnits && 'si' in test ? test.si : undefined;
    const value = si
      ? (Number(conventional) * si.factor + (si.offset ?? 0)).toFixed(si.decimals)
      : conventional;
    const unit = si ? si.unit : 'unit' in test ? test.unit : '';
    const comment = faker.number.float() < 0.04 ? faker.helpers.arrayElement(comments) : '';

    const fields: string[] = [
      patient.mrn,
      patient.ssn,
      patient.firstName,
      patient.lastName,
      patient.birthDate,
      patient.sex,
      patient.race,
      patient.ethnicity,
      patient.street,
      patient.city,
      spec.state,
      patient.zip,
      patient.phone,
      patient.email,
      faker.helpers.arrayElement(visits),
      collectedAt,
      test.category,
      test.code,
      test.name,
      value,
      unit,
      comment,
    ];
    if (spec.dirtyShare > 0 && faker.number.float() < spec.dirtyShare)
      makeDirty(faker, fields, patient);
    buffer += `${fields.map(csvField).join(',')}\n`;
    if (buffer.length > 1 << 20) {
      if (!out.write(buffer)) await once(out, 'drain');
      buffer = '';
    }
  }
  out.end(buffer);
  await once(out, 'finish');
}

/** The defects real exports have: each one a validation rule must catch. */
function makeDirty(faker: Faker, fields: string[], patient: Patient): void {
  const defect = faker.number.int({ min: 0, max: 3 });
  if (defect === 0) fields[0] = ''; // missing patient id
  if (defect === 1) fields[15] = '31/02/2024'; // a date in the wrong format, and impossible
  if (defect === 2)
    fields[21] = `Called ${patient.firstName} ${patient.lastName} at ${patient.phone}`; // identifiers in free text
  if (defect === 3) fields.splice(19, 1); // a ragged row: one field short
}

function numericValue(
  faker: Faker,
  mean: number,
  sd: number,
  min: number,
  decimals: number,
): string {
  // Box-Muller: a normal draw from two uniform ones.
  const u = 1 - faker.number.float();
  const v = faker.number.float();
  const normal = Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * v);
  return Math.max(min, mean + sd * normal).toFixed(decimals);
}

function csvField(value: string): string {
  return /[",\n\r]/.test(value) ? `"${value.replaceAll('"', '""')}"` : value;
}

/** `count` consecutive months from `first` (YYYY-MM). */
export function monthSequence(first: string, count: number): string[] {
  const [year, month] = first.split('-').map(Number) as [number, number];
  return Array.from({ length: count }, (_, i) => {
    const date = new Date(Date.UTC(year, month - 1 + i, 1));
    return date.toISOString().slice(0, 7);
  });
}
