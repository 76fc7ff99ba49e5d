import { describe, expect, it } from 'vitest';
import { synthea } from '../../test/ingest-helpers.ts';
import { inferContract } from './infer-contract.ts';

describe('inferContract', () => {
  it('proposes a contract for the fixture that drops or transforms every identifier', async () => {
    const { contract, warnings } = await inferContract(synthea('2020-12'), 'observations');
    const roleOf = (header: string) =>
      contract.columns.find((column) => (column.header ?? column.name) === header)?.role;

    expect(contract.name).toBe('observations');
    expect(contract.datePolicy).toBe('year');
    expect(roleOf('MRN')).toBe('patient_id');
    for (const header of ['SSN', 'FIRST', 'LAST', 'ADDRESS', 'CITY', 'ENCOUNTER']) {
      expect(roleOf(header), header).toBe('direct_identifier');
    }
    expect(roleOf('BIRTHDATE')).toBe('birth_date');
    expect(roleOf('ZIP')).toBe('zip');
    expect(roleOf('DATE')).toBe('event_date');
    expect(roleOf('CODE')).toBe('code');
    expect(roleOf('DESCRIPTION')).toBe('code_label');
    expect(roleOf('VALUE')).toBe('measure');
    expect(roleOf('GENDER')).toBe('quasi_identifier');
    for (const header of ['MRN', 'SSN', 'FIRST', 'LAST', 'ADDRESS', 'BIRTHDATE', 'ZIP']) {
      expect(
        warnings.some((warning) => warning.startsWith(`${header}:`)),
        header,
      ).toBe(true);
    }
  });

  it('reads a timestamp column as a timestamp and a mixed value column as allowing text', async () => {
    const { contract } = await inferContract(synthea('2020-12'));
    const date = contract.columns.find((column) => column.header === 'DATE');
    const value = contract.columns.find((column) => column.header === 'VALUE');
    expect(date).toMatchObject({ role: 'event_date', type: 'timestamp' });
    expect(value).toMatchObject({ role: 'measure', allowText: true });
  });
});
