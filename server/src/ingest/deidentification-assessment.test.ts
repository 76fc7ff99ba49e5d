import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { assessDeidentification, datasetContractSchema, formatAssessment } from '@medlake/shared';

const shipped = (name: 'synthea-observations' | 'lab-results') =>
  datasetContractSchema.parse(
    JSON.parse(
      readFileSync(new URL(`../../config/contracts/${name}.json`, import.meta.url), 'utf8'),
    ),
  );

describe('assessDeidentification', () => {
  it('lists all 18 identifiers, and finds month-level dates and a keyed hash short of Safe Harbor', () => {
    const assessment = assessDeidentification(shipped('synthea-observations'));
    expect(assessment.identifiers.map((identifier) => identifier.letter).join('')).toBe(
      'ABCDEFGHIJKLMNOPQR',
    );
    expect(assessment.standard).toBe('limited_data_set');
    const failing = assessment.identifiers.filter((identifier) => !identifier.meetsSafeHarbor);
    expect(failing.map((identifier) => identifier.letter)).toEqual(['C', 'H']);
    expect(assessment.identifiers.find((identifier) => identifier.letter === 'A')?.columns).toEqual(
      ['first_name', 'last_name'],
    );
    expect(assessment.quasiIdentifiers[0]?.columns).toEqual([
      'birth_year',
      'age',
      'death_date',
      'observed_at',
    ]);
    expect(formatAssessment(assessment)).toContain('NOT (C) All elements of dates');
  });

  it('meets Safe Harbor once dates are years and the keyed hash is dropped', () => {
    const contract = shipped('lab-results');
    const safe = {
      ...contract,
      datePolicy: 'year' as const,
      columns: contract.columns.filter((column) => column.name !== 'encounter'),
    };
    const assessment = assessDeidentification(safe);
    expect(assessment.standard).toBe('safe_harbor');
    // Years only: the birth month can no longer be worked out from age and event date.
    expect(assessment.quasiIdentifiers.map((risk) => risk.columns[0])).toEqual(['zip']);
  });

  it('says a direct identifier kept as a keyed hash is short of Safe Harbor', () => {
    const assessment = assessDeidentification(shipped('lab-results'));
    const record = assessment.identifiers.find((identifier) => identifier.letter === 'H');
    expect(record).toMatchObject({ meetsSafeHarbor: false, columns: ['patient_id', 'encounter'] });
    expect(assessment.standard).toBe('limited_data_set');
  });
});
