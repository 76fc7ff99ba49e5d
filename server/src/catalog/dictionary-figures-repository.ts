import { sql } from 'kysely';
import type { CatalogDb } from './catalog.ts';

/** A code's rows at one hospital, with the least label and unit among them. */
export type CodeRowsFigure = {
  hospitalId: string;
  code: string | null;
  rows: number;
  label: string | null;
  unit: string | null;
};

/**
 * Distinct patients of a code (or of every code, `allCodes`) who have it at exactly these
 * hospitals (sorted): the part of a distinct count that any set of hospitals can add up.
 */
export type CodePatientsFigure = {
  allCodes: boolean;
  code: string | null;
  hospitals: string[];
  patients: number;
};

/** The dictionary's figures of one scope, counted over the releases `basis` names. */
export type ScopeFigures = {
  scope: string;
  basis: string;
  rows: CodeRowsFigure[];
  patients: CodePatientsFigure[];
};

/** A code's figures summed over the hospitals asked for. */
export type SummedCode = {
  code: string | null;
  rows: number;
  patients: number;
  label: string | null;
  unit: string | null;
};

/** Rows per insert: well under PostgreSQL's 65,535 parameters for a row of eight. */
const insertBatch = 1000;

/**
 * The data dictionary's figures (migration 2026-12-06k): written when a release is published or
 * when a request finds them counted over other releases, read by every dictionary request.
 */
export function dictionaryFiguresRepository(db: CatalogDb) {
  return {
    /** The basis each of these scopes' figures was counted over; scopes without any are absent. */
    async bases(datasetId: string, scopes: readonly string[]): Promise<Map<string, string>> {
      if (scopes.length === 0) return new Map();
      const rows = await db
        .selectFrom('dictionary_scopes')
        .select(['scope', 'basis'])
        .where('dataset_id', '=', datasetId)
        .where('scope', 'in', [...scopes])
        .execute();
      return new Map(rows.map((row) => [row.scope, row.basis]));
    },

    /**
     * Replaces a scope's figures. The scope's row is written first: its lock makes a second
     * writer of the same scope wait, so that the two never leave their rows mixed.
     */
    async replace(datasetId: string, figures: ScopeFigures): Promise<void> {
      await db
        .insertInto('dictionary_scopes')
        .values({ dataset_id: datasetId, scope: figures.scope, basis: figures.basis })
        .onConflict((conflict) =>
          conflict
            .columns(['dataset_id', 'scope'])
            .doUpdateSet({ basis: figures.basis, computed_at: sql`now()` }),
        )
        .execute();
      const ofScope = { dataset_id: datasetId, scope: figures.scope };
      await db
        .deleteFrom('dictionary_code_rows')
        .where('dataset_id', '=', datasetId)
        .where('scope', '=', figures.scope)
        .execute();
      await db
        .deleteFrom('dictionary_code_patients')
        .where('dataset_id', '=', datasetId)
        .where('scope', '=', figures.scope)
        .execute();
      for (let from = 0; from < figures.rows.length; from += insertBatch) {
        await db
          .insertInto('dictionary_code_rows')
          .values(
            figures.rows.slice(from, from + insertBatch).map((figure) => ({
              ...ofScope,
              hospital_id: figure.hospitalId,
              code: figure.code,
              row_count: figure.rows,
              label: figure.label,
              unit: figure.unit,
            })),
          )
          .execute();
      }
      for (let from = 0; from < figures.patients.length; from += insertBatch) {
        await db
          .insertInto('dictionary_code_patients')
          .values(
            figures.patients.slice(from, from + insertBatch).map((figure) => ({
              ...ofScope,
              all_codes: figure.allCodes,
              code: figure.code,
              hospitals: textArray(figure.hospitals),
              patients: figure.patients,
            })),
          )
          .execute();
      }
    },

    /**
     * Every code of these scopes summed over the hospitals given (null: all), and the distinct
     * patients of all codes together. A patient is counted once for the hospitals given, since
     * each is kept once per code under the set of hospitals they have it at. Labels and units
     * are the least in byte order (collation "C"), as the engines' min() compares text.
     */
    async sums(
      datasetId: string,
      scopes: readonly string[],
      hospitals: readonly string[] | null,
    ): Promise<{ codes: SummedCode[]; totalPatients: number }> {
      if (scopes.length === 0 || hospitals?.length === 0) return { codes: [], totalPatients: 0 };
      let rowsQuery = db
        .selectFrom('dictionary_code_rows')
        .select((eb) => [
          'code',
          eb.fn.sum<string>('row_count').as('rows'),
          sql<string | null>`min(label COLLATE "C")`.as('label'),
          sql<string | null>`min(unit COLLATE "C")`.as('unit'),
        ])
        .where('dataset_id', '=', datasetId)
        .where('scope', 'in', [...scopes]);
      if (hospitals) rowsQuery = rowsQuery.where('hospital_id', 'in', [...hospitals]);
      let patientsQuery = db
        .selectFrom('dictionary_code_patients')
        .select((eb) => ['all_codes', 'code', eb.fn.sum<string>('patients').as('patients')])
        .where('dataset_id', '=', datasetId)
        .where('scope', 'in', [...scopes]);
      if (hospitals) {
        patientsQuery = patientsQuery.where(sql<boolean>`hospitals && ${textArray(hospitals)}`);
      }
      const [rows, patients] = [
        await rowsQuery.groupBy('code').execute(),
        await patientsQuery.groupBy(['all_codes', 'code']).execute(),
      ];
      const byCode = new Map<string | null, number>();
      let totalPatients = 0;
      for (const row of patients) {
        if (row.all_codes) totalPatients = Number(row.patients);
        else byCode.set(row.code, Number(row.patients));
      }
      return {
        codes: rows.map((row) => ({
          code: row.code,
          rows: Number(row.rows),
          patients: byCode.get(row.code) ?? 0,
          label: row.label,
          unit: row.unit,
        })),
        totalPatients,
      };
    },
  };
}

/** A text[] value, one parameter per element, as PGlite and PostgreSQL both take it. */
function textArray(values: readonly string[]) {
  return values.length === 0
    ? sql<string[]>`ARRAY[]::text[]`
    : sql<string[]>`ARRAY[${sql.join(values.map((value) => sql`${value}`))}]::text[]`;
}
