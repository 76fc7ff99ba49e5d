import { lakeColumns, type DatasetContract, type LakeColumnType } from '@medlake/shared';

/** A column a query may name: a lake column of the dataset, or a partition (hospital, month). */
export type QueryColumn = {
  name: string;
  type: LakeColumnType;
  /** A pseudonym (the patient, an encounter): it links rows, and only row-level users may use it. */
  linkage: boolean;
  role: 'code' | 'event_date' | 'measure' | 'partition' | 'other';
  /** The event date that date filters use when they name none: the age reference, or the first. */
  primaryDate?: boolean;
  /**
   * An event date the ingest shifted per patient (`datePolicy: shift`): row-level results move
   * it again by the holder's own shift per patient (privacy/privacy-secrets.ts).
   */
  shifted?: boolean;
};

/** Every column the dataset's queries may name, by name. */
export function queryColumns(contract: DatasetContract): Map<string, QueryColumn> {
  const columns = new Map<string, QueryColumn>();
  for (const lake of lakeColumns(contract)) {
    const role =
      lake.role === 'code' || lake.role === 'event_date' || lake.role === 'measure'
        ? lake.role
        : 'other';
    columns.set(lake.name, {
      name: lake.name,
      // `value_text` is a measure's text twin, not a number.
      type: lake.type,
      linkage: lake.role === 'patient_id' || lake.role === 'direct_identifier',
      role: lake.type === 'varchar' && role === 'measure' ? 'other' : role,
      ...(lake.role === 'event_date' && contract.datePolicy === 'shift' ? { shifted: true } : {}),
    });
  }
  const events = contract.columns.filter((column) => column.role === 'event_date');
  const primary = events.find((column) => column.ageReference) ?? events[0];
  const primaryColumn = primary && columns.get(primary.name);
  if (primaryColumn) primaryColumn.primaryDate = true;
  for (const name of ['hospital', 'month'] as const) {
    columns.set(name, { name, type: 'varchar', linkage: false, role: 'partition' });
  }
  return columns;
}

export function isNumeric(type: LakeColumnType): boolean {
  return type === 'integer' || type === 'smallint' || type === 'double';
}

export function isTemporal(type: LakeColumnType): boolean {
  return type === 'date' || type === 'timestamp';
}
