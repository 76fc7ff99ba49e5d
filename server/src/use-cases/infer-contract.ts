import { createReadStream } from 'node:fs';
import path from 'node:path';
import { parse } from 'csv-parse';
import {
  datasetContractSchema,
  type ContractColumn,
  type DatasetContract,
  type DatasetContractInput,
} from '@medlake/shared';

export type InferredContract = {
  contract: DatasetContract;
  /** Columns that look like they identify a patient, and why. */
  warnings: string[];
};

const sampleRows = 1000;

type Guess = { column: DatasetContractInput['columns'][number]; warning?: string };

/**
 * Proposes a contract from a CSV's header and first rows: a starting point for a person to
 * review, never applied without one. Columns whose name or values look identifying are dropped
 * or pseudonymized in the proposal and listed in the warnings.
 */
export async function inferContract(file: string, name?: string): Promise<InferredContract> {
  const { header, rows } = await readSample(file);
  const guesses = header.map((raw, index) =>
    guessColumn(
      raw,
      rows.map((row) => row[index] ?? ''),
    ),
  );
  const patientGuess = guesses.findIndex((guess) => guess.column.role === 'patient_id');
  if (patientGuess === -1) {
    // A contract needs a patient id; the first identifying-looking record number is the best bet.
    const candidate = guesses.findIndex((guess) => guess.column.role === 'direct_identifier');
    const target = guesses[candidate];
    if (target)
      target.column = {
        name: target.column.name,
        header: target.column.header,
        role: 'patient_id',
      };
  }
  const datasetName = name ?? slug(path.basename(file, path.extname(file))).replaceAll('_', '-');
  const contract = datasetContractSchema.parse({
    name: /^[a-z]/.test(datasetName) ? datasetName : `dataset-${datasetName}`,
    title: `Inferred from ${path.basename(file)}`,
    description: 'Proposed by medlake datasets infer; review every column before use.',
    datePolicy: 'year',
    columns: guesses.map((guess) => guess.column),
  });
  return { contract, warnings: guesses.flatMap((guess) => (guess.warning ? [guess.warning] : [])) };
}

async function readSample(file: string): Promise<{ header: string[]; rows: string[][] }> {
  const parser = createReadStream(file).pipe(
    parse({ bom: true, relax_column_count: true, to_line: sampleRows + 1, skip_empty_lines: true }),
  );
  const records: string[][] = [];
  for await (const record of parser) records.push(record as string[]);
  const [header, ...rows] = records;
  if (!header) throw new Error(`${file} is empty`);
  return { header: header.map((field) => field.trim()), rows };
}

const patterns = {
  ssn: /^\d{3}-?\d{2}-?\d{4}$/,
  phone: /^\+?1?[ .-]?\(?\d{3}\)?[ .-]?\d{3}[ .-]?\d{4}$/,
  email: /^[^@\s]+@[^@\s]+\.[a-z]{2,}$/i,
  zip: /^\d{5}(-\d{4})?$/,
  date: /^\d{4}-\d{2}-\d{2}$/,
  timestamp: /^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}/,
  number: /^-?\d+(\.\d+)?$/,
};

function guessColumn(header: string, values: string[]): Guess {
  const name = slug(header) || 'column';
  const filled = values.filter((value) => value !== '');
  const share = (pattern: RegExp) =>
    filled.length === 0 ? 0 : filled.filter((value) => pattern.test(value)).length / filled.length;
  const h = header.toLowerCase();
  const base = { name, ...(name === header ? {} : { header }) };
  const identifying = (
    identifies: Extract<ContractColumn, { role: 'direct_identifier' }>['identifies'],
    why: string,
  ): Guess => ({
    column: { ...base, role: 'direct_identifier', identifies },
    warning: `${header}: ${why}; it will be dropped`,
  });

  if (/(^|_)(mrn|patient_?id|medical_?record|person_?id)/.test(h)) {
    return {
      column: { ...base, role: 'patient_id', required: true },
      warning: `${header}: looks like the patient id; it will be replaced by a pseudonym`,
    };
  }
  if (/ssn|social/.test(h) || share(patterns.ssn) > 0.9)
    return identifying('ssn', 'looks like a social security number');
  if (/e-?mail/.test(h) || share(patterns.email) > 0.9)
    return identifying('email', 'looks like an e-mail address');
  if (/phone|mobile|fax|^tel/.test(h) || share(patterns.phone) > 0.9)
    return identifying('phone', 'looks like a phone number');
  if (/birth|dob/.test(h))
    return {
      column: { ...base, role: 'birth_date' },
      warning: `${header}: a birth date; only the year and the age are kept`,
    };
  if (/zip|postal/.test(h) || (share(patterns.zip) > 0.9 && /zip|post/.test(h))) {
    return {
      column: { ...base, role: 'zip' },
      warning: `${header}: a ZIP code; only 3 digits are kept`,
    };
  }
  if (/description|display|test_?name|label/.test(h))
    return { column: { ...base, role: 'code_label' } };
  if (/(first|last|given|family|sur|middle|maiden)_?name|^first$|^last$|^name$/.test(h))
    return identifying('name', 'looks like a name');
  if (/address|street/.test(h)) return identifying('address', 'looks like an address');
  if (/^city$|town/.test(h)) return identifying('city', 'a place smaller than a state');
  if (/encounter|visit|admission|accession|order_?id/.test(h)) {
    return {
      column: {
        ...base,
        role: 'direct_identifier',
        action: 'pseudonymize',
        identifies: 'record_number',
      },
      warning: `${header}: a record number; it will be replaced by a keyed pseudonym`,
    };
  }
  if (
    /death|date|time|_at$|_on$/.test(h) ||
    share(patterns.date) > 0.9 ||
    share(patterns.timestamp) > 0.9
  ) {
    return {
      column: {
        ...base,
        role: 'event_date',
        type: share(patterns.timestamp) > 0.5 ? 'timestamp' : 'date',
      },
    };
  }
  if (/^(sex|gender|race|ethnicity|state|country)$/.test(h))
    return { column: { ...base, role: 'quasi_identifier' } };
  if (/code|loinc|snomed|icd|cpt/.test(h)) return { column: { ...base, role: 'code' } };
  if (/unit/.test(h)) return { column: { ...base, role: 'unit' } };
  if (/comment|note|remark|text|narrative/.test(h)) {
    return {
      column: { ...base, role: 'free_text' },
      warning: `${header}: free text; dropped unless the contract allows it`,
    };
  }
  const numeric = share(patterns.number);
  if (/value|result|measure|amount/.test(h) || numeric > 0.9) {
    return { column: { ...base, role: 'measure', allowText: numeric < 1 } };
  }
  return { column: { ...base, role: 'category' } };
}

function slug(text: string): string {
  return text
    .trim()
    .replace(/([a-z0-9])([A-Z])/g, '$1_$2')
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, '_')
    .replace(/^_+|_+$/g, '')
    .replace(/^(\d)/, 'c_$1')
    .slice(0, 63);
}
