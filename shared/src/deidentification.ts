import { z } from 'zod';
import type { ContractColumn, DatasetContract } from './contract.ts';

/**
 * What a dataset contract does with each of HIPAA's 18 identifiers (45 CFR 164.514(b)(2)),
 * which de-identification standard its lake meets, and the combinations of quasi-identifiers
 * that a row-level user can see. Worked out from the contract alone, so that the CLI and the
 * dataset page say the same.
 */

export const safeHarborIdentifierSchema = z.object({
  /** The letter of the rule, (A) to (R). */
  letter: z.string(),
  identifier: z.string(),
  /** The contract's columns that hold it. */
  columns: z.array(z.string()),
  /** What ingest does with them, or why none reaches the lake. */
  treatment: z.string(),
  /** Whether the lake meets Safe Harbor for this identifier. */
  meetsSafeHarbor: z.boolean(),
  /** Whether a Limited Data Set may hold what the lake keeps of it. */
  allowedInLimitedDataSet: z.boolean(),
});
export type SafeHarborIdentifier = z.infer<typeof safeHarborIdentifierSchema>;

export const quasiIdentifierRiskSchema = z.object({
  columns: z.array(z.string()),
  risk: z.string(),
  /** Contract options that take the combination away. */
  avoidWith: z.string(),
});
export type QuasiIdentifierRisk = z.infer<typeof quasiIdentifierRiskSchema>;

export const deidentificationAssessmentSchema = z.object({
  dataset: z.string(),
  /** The standard the lake meets: Safe Harbor, a Limited Data Set (needs a data-use agreement), or neither. */
  standard: z.enum(['safe_harbor', 'limited_data_set', 'neither']),
  summary: z.string(),
  /** What holds for every identifier: unknown columns, the scan of free text. */
  notes: z.array(z.string()),
  identifiers: z.array(safeHarborIdentifierSchema),
  quasiIdentifiers: z.array(quasiIdentifierRiskSchema),
});
export type DeidentificationAssessment = z.infer<typeof deidentificationAssessmentSchema>;

type Column = ContractColumn;
const namesOf = (columns: Column[]) => columns.map((column) => column.name);

const notInContract = 'no column of the contract holds it';

/** The Safe Harbor assessment of a contract. */
export function assessDeidentification(contract: DatasetContract): DeidentificationAssessment {
  const columns = contract.columns;
  const direct = (...kinds: string[]) =>
    columns.filter(
      (column) => column.role === 'direct_identifier' && kinds.includes(column.identifies),
    );
  const directTreatment = (
    found: Column[],
  ): Pick<SafeHarborIdentifier, 'treatment' | 'meetsSafeHarbor' | 'allowedInLimitedDataSet'> => {
    const hashed = found.filter(
      (column) => column.role === 'direct_identifier' && column.action === 'pseudonymize',
    );
    if (found.length === 0) {
      return { treatment: notInContract, meetsSafeHarbor: true, allowedInLimitedDataSet: true };
    }
    if (hashed.length === 0) {
      return {
        treatment: 'dropped at ingest',
        meetsSafeHarbor: true,
        allowedInLimitedDataSet: true,
      };
    }
    return {
      treatment: `${namesOf(hashed).join(', ')}: replaced by a keyed hash, a code derived from the identifier, which Safe Harbor's re-identification code rule (164.514(c)) does not allow; drop the column to meet it`,
      meetsSafeHarbor: false,
      // A Limited Data Set must not hold the identifier itself; a keyed hash is not it, and
      // cannot be reversed without medlake's linkage key.
      allowedInLimitedDataSet: true,
    };
  };
  const text = columns.filter(
    (column) =>
      (column.role === 'free_text' && column.allowed) ||
      (column.role === 'measure' && column.allowText),
  );
  const notes = [
    contract.unknownColumns === 'reject'
      ? 'An upload with a column the contract does not know is rejected.'
      : 'A column the contract does not know is dropped at ingest.',
    ...(text.length > 0
      ? [
          `Free text (${namesOf(text).join(', ')}) reaches the lake after a scan for SSN, phone and e-mail patterns and the upload's own identifiers; other identifiers typed into it are not found.`,
        ]
      : []),
  ];
  const other = (letter: string, identifier: string): SafeHarborIdentifier => ({
    letter,
    identifier,
    columns: [],
    treatment: notInContract,
    meetsSafeHarbor: true,
    allowedInLimitedDataSet: true,
  });
  const patient = columns.filter((column) => column.role === 'patient_id');
  const zip = columns.filter((column) => column.role === 'zip');
  const births = columns.filter((column) => column.role === 'birth_date');
  const events = columns.filter((column) => column.role === 'event_date');
  const datesKept = contract.datePolicy !== 'year' && events.length > 0;
  const dateWords = {
    year: 'generalised to the year',
    year_month: 'generalised to the month',
    shift: 'shifted by a random per-patient offset',
    keep: 'kept as sent',
  }[contract.datePolicy];

  const identifiers: SafeHarborIdentifier[] = [
    {
      letter: 'A',
      identifier: 'Names',
      columns: namesOf(direct('name')),
      ...directTreatment(direct('name')),
    },
    {
      letter: 'B',
      identifier: 'Geographic subdivisions smaller than a state (street, city, ZIP code)',
      columns: [...namesOf(direct('address', 'city')), ...namesOf(zip)],
      treatment:
        [
          direct('address', 'city').length > 0
            ? directTreatment(direct('address', 'city')).treatment
            : undefined,
          zip.length > 0
            ? `${namesOf(zip).join(', ')}: the first 3 digits, 000 where the 3-digit area has 20,000 people or fewer`
            : undefined,
        ]
          .filter(Boolean)
          .join('; ') || notInContract,
      meetsSafeHarbor: directTreatment(direct('address', 'city')).meetsSafeHarbor,
      allowedInLimitedDataSet: directTreatment(direct('address')).allowedInLimitedDataSet,
    },
    {
      letter: 'C',
      identifier:
        'All elements of dates but the year (birth, admission, discharge, death); ages over 89',
      columns: [...namesOf(births), ...namesOf(events)],
      treatment:
        [
          births.length > 0
            ? 'birth dates: year of birth and age at the event, both withheld from 90 on (age 90 means 90 or older)'
            : undefined,
          events.length > 0
            ? `event dates (${namesOf(events).join(', ')}): ${dateWords}`
            : undefined,
        ]
          .filter(Boolean)
          .join('; ') || notInContract,
      meetsSafeHarbor: !datesKept,
      allowedInLimitedDataSet: true,
    },
    {
      letter: 'D',
      identifier: 'Telephone numbers',
      columns: namesOf(direct('phone')),
      ...directTreatment(direct('phone')),
    },
    other('E', 'Fax numbers'),
    {
      letter: 'F',
      identifier: 'E-mail addresses',
      columns: namesOf(direct('email')),
      ...directTreatment(direct('email')),
    },
    {
      letter: 'G',
      identifier: 'Social security numbers',
      columns: namesOf(direct('ssn')),
      ...directTreatment(direct('ssn')),
    },
    {
      letter: 'H',
      identifier: 'Medical record numbers',
      columns: [...namesOf(patient), ...namesOf(direct('record_number'))],
      treatment: [
        `${namesOf(patient).join(', ')}: replaced by a random pseudonym that only the vault can map back (a re-identification code 164.514(c) allows)`,
        direct('record_number').length > 0
          ? directTreatment(direct('record_number')).treatment
          : undefined,
      ]
        .filter(Boolean)
        .join('; '),
      meetsSafeHarbor: directTreatment(direct('record_number')).meetsSafeHarbor,
      allowedInLimitedDataSet: directTreatment(direct('record_number')).allowedInLimitedDataSet,
    },
    other('I', 'Health plan beneficiary numbers'),
    other('J', 'Account numbers'),
    other('K', 'Certificate or license numbers'),
    other('L', 'Vehicle identifiers and serial numbers, including license plates'),
    other('M', 'Device identifiers and serial numbers'),
    other('N', 'Web URLs'),
    other('O', 'IP addresses'),
    other('P', 'Biometric identifiers, including finger and voice prints'),
    other('Q', 'Full-face photographs and comparable images'),
    {
      letter: 'R',
      identifier: 'Any other unique identifying number, characteristic or code',
      columns: namesOf(direct('other')),
      ...(direct('other').length > 0
        ? directTreatment(direct('other'))
        : {
            treatment: notInContract,
            meetsSafeHarbor: true,
            allowedInLimitedDataSet: true,
          }),
    },
  ];

  const failing = identifiers.filter((identifier) => !identifier.meetsSafeHarbor);
  const standard =
    failing.length === 0
      ? 'safe_harbor'
      : identifiers.every((identifier) => identifier.allowedInLimitedDataSet)
        ? 'limited_data_set'
        : 'neither';
  const summary = {
    safe_harbor: 'The lake meets HIPAA Safe Harbor: none of the 18 identifiers reaches it.',
    limited_data_set: `The lake is a Limited Data Set, not Safe Harbor (${failing.map((identifier) => identifier.letter).join(', ')}): researchers need a data-use agreement (164.514(e)), or an expert determination (164.514(b)(1)).`,
    neither: `The lake meets neither Safe Harbor nor the Limited Data Set rule (${failing.map((identifier) => identifier.letter).join(', ')}): only an expert determination (164.514(b)(1)) can cover it; see the treatments below for what to change.`,
  }[standard];
  return {
    dataset: contract.name,
    standard,
    summary,
    notes,
    identifiers,
    quasiIdentifiers: quasiIdentifierRisks(contract),
  };
}

/** What a row-level user can put together from the columns the lake keeps. */
function quasiIdentifierRisks(contract: DatasetContract): QuasiIdentifierRisk[] {
  const columns = contract.columns;
  const has = (role: ContractColumn['role']) => columns.some((column) => column.role === role);
  const events = columns.filter((column) => column.role === 'event_date');
  const risks: QuasiIdentifierRisk[] = [];
  if (has('birth_date') && events.length > 0 && contract.datePolicy !== 'year') {
    const when = contract.datePolicy === 'shift' ? 'shifted event date' : 'event month';
    risks.push({
      columns: ['birth_year', 'age', ...events.map((column) => column.name)],
      risk:
        contract.datePolicy === 'shift'
          ? `birth year + age at the real event + ${when}: the birthday is narrowed to a month of shifted time; the shift hides the real month, but every patient's rows over years show when their age steps up`
          : `birth year + age at the event + ${when}: the birth month is narrowed to one or two months wherever a patient's age steps up between two events`,
      avoidWith:
        contract.datePolicy === 'shift'
          ? 'datePolicy "year" (dates and ages by year only)'
          : 'datePolicy "year" (age with the event year only), or "shift" (dates shifted per patient)',
    });
  }
  const death = events.filter((column) => /death|died|deceased/.test(column.name));
  if (death.length > 0 && contract.datePolicy !== 'year') {
    risks.push({
      columns: death.map((column) => column.name),
      risk: 'a month (or shifted day) of death: deaths are rare, public in obituaries, and single out a patient',
      avoidWith: 'datePolicy "year"',
    });
  }
  const demographics = columns
    .filter((column) => column.role === 'quasi_identifier')
    .map((column) => column.name);
  if (has('zip') && has('birth_date') && demographics.length > 0) {
    risks.push({
      columns: ['zip', 'birth_year', ...demographics],
      risk: 'a 3-digit ZIP area with year of birth and demographics: a rare combination in a small area points at few people',
      avoidWith:
        'aggregate access, or a smallCellThreshold that covers the combination; drop a quasi_identifier column from the contract',
    });
  }
  return risks;
}

/** The assessment as plain text, as `medlake datasets assess` prints it. */
export function formatAssessment(assessment: DeidentificationAssessment): string {
  const lines = [
    `De-identification of ${assessment.dataset}: ${assessment.standard.replaceAll('_', ' ')}`,
    assessment.summary,
    ...assessment.notes,
    '',
    "HIPAA's 18 identifiers (45 CFR 164.514(b)(2)):",
  ];
  for (const identifier of assessment.identifiers) {
    const mark = identifier.meetsSafeHarbor ? 'ok ' : 'NOT';
    const where = identifier.columns.length > 0 ? ` [${identifier.columns.join(', ')}]` : '';
    lines.push(
      `  ${mark} (${identifier.letter}) ${identifier.identifier}${where}: ${identifier.treatment}`,
    );
  }
  lines.push('', 'Quasi-identifiers a row-level user sees together:');
  if (assessment.quasiIdentifiers.length === 0) lines.push('  none found');
  for (const risk of assessment.quasiIdentifiers) {
    lines.push(`  - ${risk.columns.join(' + ')}: ${risk.risk}. Avoid with ${risk.avoidWith}.`);
  }
  return lines.join('\n');
}
