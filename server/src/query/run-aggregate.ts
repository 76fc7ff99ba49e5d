import { AppError } from '../errors.ts';
import type { QueryEngine, RunOptions } from '../engines/types.ts';
import {
  hiddenPatients,
  hiddenRows,
  hiddenTotal,
  type CompiledQuery,
  type Statement,
  type ResultColumn,
} from './compile-query.ts';
import type { AggregateRow } from './disclosure.ts';

/** An aggregate with more groups than this fails with advice to narrow it. */
export const maxAggregateGroups = 100_000;

/**
 * The statement that answers a compiled aggregate: its groups and, for a grouped query, its
 * grand total's own SELECT after them; the total row first, so that a cut at the group limit
 * never loses it.
 */
export function aggregateStatement(compiled: CompiledQuery): Statement {
  const answer = compiled.total ? `${compiled.sql} UNION ALL ${compiled.total.sql}` : compiled.sql;
  return {
    sql: `SELECT * FROM (${answer}) AS r ORDER BY ${hiddenTotal} DESC LIMIT ${maxAggregateGroups + 2}`,
    params: compiled.params,
  };
}

/**
 * Runs a compiled aggregate and splits its answer into the groups and the grand total, with
 * numbers as numbers, ready for disclosure control. An ungrouped aggregate's one row is both.
 */
export async function runAggregate(
  engine: QueryEngine,
  compiled: CompiledQuery,
  shape: { grouped: boolean; readsFiles: boolean },
  options: RunOptions = {},
): Promise<{ groups: AggregateRow[]; total: AggregateRow }> {
  const empty = { [hiddenRows]: 0, [hiddenPatients]: 0 } as AggregateRow;
  if (!shape.readsFiles) return { groups: [], total: empty };
  const rows = await engine.rows(aggregateStatement(compiled), options);
  if (rows.length > maxAggregateGroups + 1) {
    throw new AppError(
      'too_many_groups',
      `The query makes more than ${maxAggregateGroups.toLocaleString('en-US')} groups; group by fewer or coarser columns, or filter first`,
    );
  }
  const typed = rows.map((row) => toAggregateRow(row, compiled.columns));
  const total = typed.find((row) => Number(row[hiddenTotal]) === 1) ?? empty;
  const groups = shape.grouped ? typed.filter((row) => row !== total) : [total];
  return { groups, total };
}

/**
 * The total over the groups of at least the compiled minimum of patients only: the margin an
 * aggregate result shows when it withholds groups, so that the total minus the groups shown
 * leaves nothing to work out.
 */
export async function runPublishedTotal(
  engine: QueryEngine,
  compiled: CompiledQuery,
  options: RunOptions = {},
): Promise<AggregateRow> {
  if (!compiled.publishedTotal) {
    throw new Error('The query was not compiled for aggregate access: it has no published total');
  }
  const [row] = await engine.rows(compiled.publishedTotal, options);
  return toAggregateRow(row ?? {}, compiled.columns);
}

/** Engine JSON to numbers where the column is a number (big integers arrive as text). */
function toAggregateRow(
  row: Record<string, unknown>,
  columns: readonly ResultColumn[],
): AggregateRow {
  const typed: Record<string, unknown> = { ...row };
  for (const column of columns) {
    const value = row[column.name];
    const numeric =
      column.type === 'integer' || column.type === 'smallint' || column.type === 'double';
    if (numeric && typeof value === 'string') typed[column.name] = Number(value);
  }
  typed[hiddenRows] = Number(row[hiddenRows] ?? 0);
  typed[hiddenPatients] = Number(row[hiddenPatients] ?? 0);
  return typed as AggregateRow;
}
