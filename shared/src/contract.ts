import { z } from 'zod';

/**
 * A dataset contract: the columns a hospital export carries and, for each, what
 * de-identification does to it on the way into the lake. Stored in the catalog; shown to
 * researchers so that they know what every lake column means.
 */

export const datePolicies = ['year', 'year_month', 'shift', 'keep'] as const;
export type DatePolicy = (typeof datePolicies)[number];

export const sourceTypes = [
  'varchar',
  'integer',
  'double',
  'boolean',
  'date',
  'timestamp',
] as const;
export type SourceType = (typeof sourceTypes)[number];

const columnName = z
  .string()
  .regex(/^[a-z][a-z0-9_]{0,62}$/, 'must be snake_case: a-z, 0-9 and _, starting with a letter');

const base = {
  /** The column's name in the lake, and the CSV header expected unless `header` says otherwise. */
  name: columnName,
  /** The header the export uses for this column, when it differs from `name`. */
  header: z.string().min(1).max(200).optional(),
  description: z.string().max(2000).optional(),
  /** A row whose value is empty is rejected with a line-and-column error. */
  required: z.boolean().default(false),
};

const patientIdColumn = z.object({ ...base, role: z.literal('patient_id') });

const directIdentifierColumn = z.object({
  ...base,
  role: z.literal('direct_identifier'),
  /** Dropped by default; `pseudonymize` keeps linkage (an encounter id) through the vault. */
  action: z.enum(['drop', 'pseudonymize']).default('drop'),
  /** `name` columns feed the free-text scan: a name from the upload found in free text is a hit. */
  identifies: z
    .enum(['name', 'ssn', 'address', 'city', 'phone', 'email', 'record_number', 'other'])
    .default('other'),
});

const birthDateColumn = z.object({
  ...base,
  role: z.literal('birth_date'),
  type: z.enum(['date', 'timestamp']).default('date'),
});

const eventDateColumn = z.object({
  ...base,
  role: z.literal('event_date'),
  type: z.enum(['date', 'timestamp']).default('date'),
  /** Ages are computed at the first event date unless another is marked as the reference. */
  ageReference: z.boolean().default(false),
});

const zipColumn = z.object({
  ...base,
  role: z.literal('zip'),
  /**
   * The column holds US five-digit ZIP codes (ZIP+4 allowed): a four-digit value lost its
   * leading zero in a spreadsheet (2134 for 02134) and is padded back. Without it, such a value
   * is stored empty and counted in the quality report.
   */
  fiveDigit: z.boolean().default(false),
});

const keptColumn = z.object({
  ...base,
  role: z.enum(['quasi_identifier', 'code', 'code_label', 'unit', 'category']),
  type: z.enum(sourceTypes).default('varchar'),
});

const measureColumn = z.object({
  ...base,
  role: z.literal('measure'),
  type: z.enum(['integer', 'double']).default('double'),
  /**
   * Results that are words ("Never smoker") go to a `<name>_text` column, scanned like free
   * text, instead of failing the row.
   */
  allowText: z.boolean().default(false),
  /** What a text result holding an identifier does: loses its text (default), or fails. */
  onIdentifier: z.enum(['redact_value', 'reject_row', 'reject_file']).default('redact_value'),
  /**
   * Converts each value to the canonical unit of its code (server/config/units), so that values
   * from hospitals that use other units can be compared. The value and unit as sent are kept
   * beside (`<name>_as_sent`, `<unit>_as_sent`), and `<name>_flag` says why a value is not to
   * be trusted: its unit could not be converted (the canonical value is then empty), or it is
   * outside the range a living person can have. Either can instead reject the row.
   */
  canonicalUnits: z
    .object({
      onUnconvertible: z.enum(['flag', 'reject_row']).default('flag'),
      onImplausible: z.enum(['flag', 'reject_row']).default('flag'),
    })
    .strict()
    .optional(),
});

const freeTextColumn = z.object({
  ...base,
  role: z.literal('free_text'),
  /** Free text is dropped unless allowed; allowed text is scanned for identifiers. */
  allowed: z.boolean().default(false),
  /** What text holding an identifier does: fail its row (default), fail the file, or be emptied. */
  onIdentifier: z.enum(['reject_row', 'reject_file', 'redact_value']).default('reject_row'),
});

export const contractColumnSchema = z.discriminatedUnion('role', [
  patientIdColumn,
  directIdentifierColumn,
  birthDateColumn,
  eventDateColumn,
  zipColumn,
  keptColumn,
  measureColumn,
  freeTextColumn,
]);

export type ContractColumn = z.infer<typeof contractColumnSchema>;
export type ColumnRole = ContractColumn['role'];

export const datasetContractSchema = z
  .object({
    /** The dataset's id: lower-case words joined by dashes, e.g. `lab-results`. */
    name: z.string().regex(/^[a-z][a-z0-9-]{1,62}$/, 'must be lower-case words joined by dashes'),
    title: z.string().min(1).max(200),
    description: z.string().max(5000).default(''),
    /** What happens to every event_date column. `year` is HIPAA Safe Harbor; the others need an expert determination or a limited data set agreement. */
    datePolicy: z.enum(datePolicies).default('year'),
    /**
     * `hospital`: the same patient id at two hospitals is two patients (two pseudonyms).
     * `shared`: the hospitals share one id space (a regional MPI), so the id links them.
     */
    patientIdSpace: z.enum(['hospital', 'shared']).default('hospital'),
    /** A CSV column the contract does not know is an error unless this says `drop`. */
    unknownColumns: z.enum(['reject', 'drop']).default('reject'),
    /**
     * Which event dates belong in an upload for a month: the month itself, or as many months
     * before it as `monthsBack` says (for late results). The reference event date (ageReference,
     * else the first) of rows outside the window is counted in the quality report, and the row
     * is kept or rejected as `outside` says.
     */
    eventWindow: z
      .object({
        monthsBack: z.number().int().min(0).max(240).default(0),
        outside: z.enum(['keep', 'reject_row']).default('keep'),
      })
      .strict()
      .optional(),
    /** Rows that fail validation are left out and reported, up to this many; beyond it the file fails. */
    maxRejectedRows: z.number().int().min(0).default(0),
    delimiter: z.string().length(1).default(','),
    /**
     * Whether a quoted value may hold a line break. When false, every record is one line, so an
     * engine that reads the file in parallel (Spark) splits it into many tasks; a line break in
     * quotes is then a problem of its lines. True by default: a file valid under RFC 4180 stays
     * readable until its steward says otherwise.
     */
    multiLineValues: z.boolean().default(true),
    /**
     * Disclosure control for researchers with aggregate access: a group of fewer patients than
     * this is suppressed (shown as "<threshold"). 11 follows the CMS cell-size rule.
     */
    smallCellThreshold: z.number().int().min(2).max(1000).default(11),
    /** Privacy controls beyond small cells that the admin chose for this dataset (docs/privacy.md). */
    privacy: z
      .object({
        /**
         * Check every aggregate result before it is released to a project against what was
         * released to it before, and suppress a cell whose patient count differs from an
         * earlier cell of the same groups by fewer than the threshold, or that with an earlier
         * result of the same rows grouped more or less finely would reveal a small group
         * (docs/privacy.md). On unless the contract turns it off or asks for noise, which
         * protects against differencing on its own (releaseLedgerOn).
         */
        releaseLedger: z.boolean().optional(),
        /**
         * Exports that fail an output check (row-level records; small cells a row-level user
         * sees unsuppressed) wait for an admin's approval before a download link is given.
         */
        airlock: z.boolean().default(false),
        /**
         * Differentially private answers for aggregate users: counts of rows and patients with
         * noise from the discrete Laplace distribution, each query spending `epsilonPerQuery` of
         * a budget of `budget.epsilon` per holder (project or user) per `budget.windowDays`, and
         * of `budget.lifetimeEpsilon` in all when set; sums of the columns `sums` names, clamped
         * to their ranges, and means of them. Other measures are refused. A patient counts in at
         * most `maxRowsPerPatient` rows and in at most `maxGroupsPerPatient` groups of a query
         * (its rows in other groups are left out); a group is shown only if its noisy patient
         * count clears a threshold set by ε and `delta` (partition selection).
         */
        noise: z
          .object({
            epsilonPerQuery: z.number().min(0.001).max(10),
            /** The chance, per query, that a group of one patient's making is shown at all. */
            delta: z.number().min(1e-12).max(1e-3).default(1e-6),
            budget: z
              .object({
                epsilon: z.number().min(0.001).max(1000),
                windowDays: z.number().int().min(1).max(3660),
                lifetimeEpsilon: z.number().min(0.001).max(100_000).optional(),
              })
              .strict(),
            maxRowsPerPatient: z.number().int().min(1).max(10_000).default(20),
            /** Defaults to maxRowsPerPatient, the most groups a patient's rows can fall in. */
            maxGroupsPerPatient: z.number().int().min(1).max(10_000).optional(),
            /**
             * Numeric columns whose sums may be asked for, each with the range its values are
             * clamped to (the sum's sensitivity) and the step they are rounded to (the noise is
             * a whole number of steps).
             */
            sums: z
              .record(
                z.string(),
                z
                  .object({ min: z.number(), max: z.number(), step: z.number().positive() })
                  .strict()
                  .refine((range) => range.min < range.max, 'min must be below max'),
              )
              .default({}),
          })
          .strict()
          .optional(),
      })
      .strict()
      .prefault({}),
    /**
     * What a researcher agrees to when asking for access: shown with the request form and
     * accepted with each request (the contract's version is recorded with the acceptance).
     */
    dataUseTerms: z
      .string()
      .max(20_000)
      .default(
        'Use the data only for the purpose stated in your request. Do not try to re-identify any person, link the data with other sources to that end, or share it with anyone outside your grant. Report any suspected disclosure to the data custodian at once. Access ends when your grant expires or is revoked.',
      ),
    columns: z.array(contractColumnSchema).min(2),
  })
  .superRefine((contract, context) => {
    const problem = (message: string) => context.addIssue({ code: 'custom', message });
    const roles = contract.columns.map((column) => column.role);
    if (roles.filter((role) => role === 'patient_id').length !== 1) {
      problem('a contract needs exactly one patient_id column');
    }
    if (contract.privacy.noise && contract.privacy.releaseLedger === true) {
      // The ledger holds cells back by their exact patient counts, which noise cannot protect.
      problem(
        'privacy.releaseLedger cannot be on with privacy.noise: the ledger decides on exact counts, which would leak past the noise',
      );
    }
    if (roles.filter((role) => role === 'birth_date').length > 1) {
      problem('a contract may have at most one birth_date column');
    }
    if (roles.includes('birth_date') && !roles.includes('event_date')) {
      problem('a birth_date column needs an event_date column to compute ages at');
    }
    const references = contract.columns.filter(
      (column) => column.role === 'event_date' && column.ageReference,
    );
    if (references.length > 1) problem('at most one event_date column may be the ageReference');
    for (const column of contract.columns) {
      if (column.role !== 'measure' || !column.canonicalUnits) continue;
      if (column.type !== 'double') problem(`${column.name}: canonicalUnits needs type double`);
      if (!roles.includes('code') || !roles.includes('unit')) {
        problem(`${column.name}: canonicalUnits needs a code column and a unit column`);
      }
    }
    duplicates(contract.columns.map((column) => column.name)).forEach((name) =>
      problem(`column name ${name} is used twice`),
    );
    duplicates(contract.columns.map((column) => expectedHeader(column).toLowerCase())).forEach(
      (header) => problem(`header ${header} is used by two columns`),
    );
    duplicates(lakeColumns(contract).map((column) => column.name)).forEach((name) =>
      problem(`lake column ${name} would be produced twice`),
    );
  });

export type DatasetContract = z.infer<typeof datasetContractSchema>;
/** A contract as written in a file, before defaults are applied. */
export type DatasetContractInput = z.input<typeof datasetContractSchema>;

export function expectedHeader(column: Pick<ContractColumn, 'name' | 'header'>): string {
  return column.header ?? column.name;
}

export type LakeColumnType =
  'varchar' | 'integer' | 'smallint' | 'double' | 'boolean' | 'date' | 'timestamp';

/** A column of the de-identified data in the lake, and how it came to be. */
export type LakeColumn = {
  name: string;
  type: LakeColumnType;
  /** The contract column it comes from. */
  source: string;
  role: ColumnRole;
  /** What de-identification did, in words a researcher reads in the catalog. */
  treatment: string;
};

const datePolicyWords: Record<DatePolicy, string> = {
  year: 'generalised to the year (stored as 1 January)',
  year_month: 'generalised to the month (stored as the 1st)',
  shift: 'shifted by a random per-patient offset that keeps intervals',
  keep: 'kept as delivered',
};

/** The lake columns a contract produces, in order. Dropped columns produce none. */
export function lakeColumns(
  contract: Pick<DatasetContract, 'columns' | 'datePolicy'>,
): LakeColumn[] {
  const converted = convertedMeasure(contract);
  return contract.columns.flatMap((column): LakeColumn[] => {
    const from = { source: column.name, role: column.role };
    switch (column.role) {
      case 'patient_id':
        return [
          {
            name: 'patient',
            type: 'varchar',
            ...from,
            treatment: 'replaced by a random pseudonym from the vault',
          },
        ];
      case 'direct_identifier':
        return column.action === 'pseudonymize'
          ? [
              {
                name: column.name,
                type: 'varchar',
                ...from,
                treatment: 'replaced by a random pseudonym from the vault',
              },
            ]
          : [];
      case 'birth_date':
        return [
          {
            name: 'birth_year',
            type: 'smallint',
            ...from,
            treatment: 'year of birth only; empty for people aged 90 or older',
          },
          {
            name: 'age',
            type: 'smallint',
            ...from,
            treatment: 'age in whole years at the event; 90 means 90 or older',
          },
        ];
      case 'event_date': {
        const type =
          contract.datePolicy === 'shift' || contract.datePolicy === 'keep' ? column.type : 'date';
        return [
          { name: column.name, type, ...from, treatment: datePolicyWords[contract.datePolicy] },
        ];
      }
      case 'zip':
        return [
          {
            name: column.name,
            type: 'varchar',
            ...from,
            treatment: 'first 3 digits; 000 where the 3-digit area has 20,000 people or fewer',
          },
        ];
      case 'measure':
        if (column.canonicalUnits) return convertedMeasureColumns(column, from);
        return [
          { name: column.name, type: column.type, ...from, treatment: 'kept' },
          ...(column.allowText
            ? [
                {
                  name: `${column.name}_text`,
                  type: 'varchar' as const,
                  ...from,
                  treatment: 'non-numeric results, scanned for identifiers',
                },
              ]
            : []),
        ];
      case 'free_text':
        return column.allowed
          ? [
              {
                name: column.name,
                type: 'varchar',
                ...from,
                treatment: 'kept after a scan for identifiers',
              },
            ]
          : [];
      case 'unit':
        return converted
          ? [
              {
                name: column.name,
                type: 'varchar',
                ...from,
                treatment: `the unit of ${converted.name}: its code's canonical unit, or as sent for a code without one`,
              },
              {
                name: `${column.name}_as_sent`,
                type: 'varchar',
                ...from,
                treatment: 'the unit as the hospital sent it',
              },
            ]
          : [{ name: column.name, type: column.type, ...from, treatment: 'kept' }];
      default:
        return [{ name: column.name, type: column.type, ...from, treatment: 'kept' }];
    }
  });
}

type MeasureColumn = Extract<ContractColumn, { role: 'measure' }>;

/** The measure whose values are converted to canonical units, if any. */
export function convertedMeasure(
  contract: Pick<DatasetContract, 'columns'>,
): MeasureColumn | undefined {
  return contract.columns.find(
    (column): column is MeasureColumn => column.role === 'measure' && !!column.canonicalUnits,
  );
}

function convertedMeasureColumns(
  column: MeasureColumn,
  from: Pick<LakeColumn, 'source' | 'role'>,
): LakeColumn[] {
  return [
    {
      name: column.name,
      type: 'double',
      ...from,
      treatment:
        'converted to the canonical unit of its code (UCUM); empty where the unit could not be converted',
    },
    ...(column.allowText
      ? [
          {
            name: `${column.name}_text`,
            type: 'varchar' as const,
            ...from,
            treatment: 'non-numeric results, scanned for identifiers',
          },
        ]
      : []),
    {
      name: `${column.name}_as_sent`,
      type: 'double',
      ...from,
      treatment: 'the value as the hospital sent it, in the unit it sent',
    },
    {
      name: `${column.name}_flag`,
      type: 'varchar',
      ...from,
      treatment:
        'unit_unconvertible: the unit could not be converted; implausible: outside the range a living person can have; else empty',
    },
  ];
}

function duplicates(values: string[]): string[] {
  const seen = new Set<string>();
  const repeated = new Set<string>();
  for (const value of values) (seen.has(value) ? repeated : seen).add(value);
  return [...repeated];
}

/**
 * Whether a dataset's aggregate results go through the release ledger: as its contract says,
 * and by default unless it has noisy answers (whose noise already protects against
 * differencing, and whose noisy counts would make the ledger hold back at random).
 */
export function releaseLedgerOn(privacy: DatasetContract['privacy']): boolean {
  return privacy.releaseLedger ?? privacy.noise === undefined;
}
