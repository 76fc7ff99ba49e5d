import { describe, expect, it } from 'vitest';
import { datasetContractSchema, lakeColumns, type DatasetContractInput } from './contract.ts';

const minimal: DatasetContractInput = {
  name: 'minimal',
  title: 'Minimal',
  columns: [
    { name: 'mrn', role: 'patient_id' },
    { name: 'code', role: 'code' },
  ],
};

function problems(input: unknown): string[] {
  const result = datasetContractSchema.safeParse(input);
  return result.success ? [] : result.error.issues.map((issue) => issue.message);
}

describe('dataset contract', () => {
  it('applies safe defaults: year-only dates, per-hospital ids, unknown columns rejected', () => {
    const contract = datasetContractSchema.parse(minimal);
    expect(contract).toMatchObject({
      datePolicy: 'year',
      patientIdSpace: 'hospital',
      unknownColumns: 'reject',
      maxRejectedRows: 0,
      delimiter: ',',
      // Files valid under RFC 4180, line breaks in quotes included, stay readable.
      multiLineValues: true,
    });
  });

  it('needs exactly one patient id column', () => {
    expect(
      problems({
        ...minimal,
        columns: [
          { name: 'code', role: 'code' },
          { name: 'x', role: 'unit' },
        ],
      }),
    ).toContain('a contract needs exactly one patient_id column');
  });

  it('refuses the release ledger beside noisy answers', () => {
    const noise = { epsilonPerQuery: 1, budget: { epsilon: 10, windowDays: 30 } };
    expect(problems({ ...minimal, privacy: { releaseLedger: true, noise } })).toContain(
      'privacy.releaseLedger cannot be on with privacy.noise: the ledger decides on exact counts, which would leak past the noise',
    );
    expect(problems({ ...minimal, privacy: { noise } })).toEqual([]);
  });

  it('refuses a birth date without an event date to compute ages at', () => {
    expect(
      problems({ ...minimal, columns: [...minimal.columns, { name: 'dob', role: 'birth_date' }] }),
    ).toContain('a birth_date column needs an event_date column to compute ages at');
  });

  it('refuses two columns that would read the same header', () => {
    expect(
      problems({
        ...minimal,
        columns: [...minimal.columns, { name: 'other', header: 'CODE', role: 'unit' }],
      }),
    ).toContain('header code is used by two columns');
  });

  it('produces no lake column for dropped identifiers and free text that is not allowed', () => {
    const contract = datasetContractSchema.parse({
      ...minimal,
      datePolicy: 'shift',
      columns: [
        ...minimal.columns,
        { name: 'ssn', role: 'direct_identifier' },
        { name: 'visit', role: 'direct_identifier', action: 'pseudonymize' },
        { name: 'note', role: 'free_text' },
        { name: 'dob', role: 'birth_date' },
        { name: 'seen', role: 'event_date', type: 'timestamp' },
        { name: 'value', role: 'measure', allowText: true },
      ],
    });
    expect(lakeColumns(contract).map((column) => `${column.name}:${column.type}`)).toEqual([
      'patient:varchar',
      'code:varchar',
      'visit:varchar',
      'birth_year:smallint',
      'age:smallint',
      'seen:timestamp',
      'value:double',
      'value_text:varchar',
    ]);
  });

  it('stores generalised event dates as dates', () => {
    const contract = datasetContractSchema.parse({
      ...minimal,
      datePolicy: 'year_month',
      columns: [...minimal.columns, { name: 'seen', role: 'event_date', type: 'timestamp' }],
    });
    expect(lakeColumns(contract).find((column) => column.name === 'seen')?.type).toBe('date');
  });
});
