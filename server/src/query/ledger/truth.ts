import type { QueryEngine, RunOptions } from '../../engines/types.ts';
import type { ScanFiles } from '../../engines/sql-dialect.ts';
import { compileRowCondition, type CompileContext } from '../compile-query.ts';
import { isTemporal, type QueryColumn } from '../query-columns.ts';
import type { Scope } from './cells.ts';
import { isEverything, type Box, type Constraint, type Value } from './regions.ts';

/**
 * One question for the engine about a combination of released cells: how many patients have a
 * row in the region it covers (`region`: where the combination is 1), and for how many
 * patients the same combination of the cells' patient sets is not zero (a patient counts once
 * in each cell they have a row in): the patients its published patient counts are about.
 */
export type TruthQuestion = {
  terms: ReadonlyArray<{ cell: string; coefficient: number }>;
  region: readonly Box[] | null;
};

export type TruthAnswer = { regionPatients: number; patientSupport: number };

/** Questions per statement: each adds two aggregates over the patients. */
const questionsPerStatement = 40;

/**
 * Asks the engine, in as few statements as the batch size allows, about combinations of cells
 * of one scope. Every cell is compiled from its box; the scope (a cohort, a filter over
 * several columns) by the query compiler, once.
 */
export async function askTheEngine(input: {
  engine: QueryEngine;
  options: RunOptions;
  context: CompileContext;
  scope: Scope;
  /** The files of every release the cells read. */
  files: readonly ScanFiles[];
  cells: ReadonlyMap<string, Box>;
  questions: readonly TruthQuestion[];
}): Promise<TruthAnswer[]> {
  const answers: TruthAnswer[] = [];
  for (let from = 0; from < input.questions.length; from += questionsPerStatement) {
    const batch = input.questions.slice(from, from + questionsPerStatement);
    const rows = await input.engine.rows(statementFor(input, batch), input.options);
    const row = rows[0] ?? {};
    batch.forEach((_, index) => {
      answers.push({
        regionPatients: Number(row[`r${index}`] ?? 0),
        patientSupport: Number(row[`s${index}`] ?? 0),
      });
    });
  }
  return answers;
}

function statementFor(
  input: Parameters<typeof askTheEngine>[0],
  questions: readonly TruthQuestion[],
): { sql: string; params: unknown[] } {
  const { dialect } = input.context;
  const scope = compileRowCondition(
    {
      ...(input.scope.where ? { where: input.scope.where } : {}),
      ...(input.scope.cohort ? { cohort: input.scope.cohort } : {}),
    },
    input.context,
  );
  const params = [...scope.params];
  const param = (value: unknown) => {
    params.push(value);
    return dialect.placeholder(params.length);
  };
  const sqlOf = sqlWriter(input.context.columns, dialect, param);
  const used = [...new Set(questions.flatMap((question) => question.terms.map((t) => t.cell)))];
  const index = new Map(used.map((cell, position) => [cell, position]));
  const boxes = used.map((cell) => sqlOf.box(input.cells.get(cell)!));
  const patient = `t.${dialect.quoteIdentifier('patient')}`;
  const perPatient = [
    `${patient} AS pid`,
    ...boxes.map((box, position) => `max(CASE WHEN ${box} THEN 1 ELSE 0 END) AS m${position}`),
    ...questions.map(
      (question, position) =>
        `max(CASE WHEN ${question.region ? sqlOf.region(question.region) : 'FALSE'} THEN 1 ELSE 0 END) AS q${position}`,
    ),
  ];
  const counts = questions.flatMap((question, position) => {
    const sum = question.terms
      .map((term) => `(${term.coefficient}) * m${index.get(term.cell)}`)
      .join(' + ');
    return [
      `count(CASE WHEN q${position} = 1 THEN 1 END) AS r${position}`,
      `count(CASE WHEN ${sum} <> 0 THEN 1 END) AS s${position}`,
    ];
  });
  const scan = dialect.scanParquet(input.files);
  const anyCell = boxes.length > 0 ? `(${boxes.join(' OR ')})` : 'FALSE';
  const sql =
    `SELECT ${counts.join(', ')} FROM (SELECT ${perPatient.join(', ')} FROM ${scan} AS t ` +
    `WHERE ${scope.sql} AND ${anyCell} GROUP BY ${patient}) AS p`;
  return { sql, params };
}

/** A box or a region (boxes joined by OR) as a condition on a row `t`, values as parameters. */
function sqlWriter(
  columns: ReadonlyMap<string, QueryColumn>,
  dialect: CompileContext['dialect'],
  param: (value: unknown) => string,
) {
  const valueSql = (column: QueryColumn | undefined, value: Value) => {
    if (column && isTemporal(column.type) && typeof value === 'number') {
      const text = new Date(value).toISOString().replace('Z', '');
      return text.endsWith('T00:00:00.000') && column.type === 'date'
        ? dialect.castToDate(param(text.slice(0, 10)))
        : dialect.castToTimestamp(param(text));
    }
    if (column?.type === 'boolean') return param(value === 1);
    return param(value);
  };
  const constraint = (dim: string, set: Constraint) => {
    const column = dim === 'release' ? undefined : columns.get(dim);
    const expression = `t.${dialect.quoteIdentifier(dim)}`;
    const ors: string[] = [];
    const points: Value[] = [];
    for (const [lo, hi] of set.ranges) {
      if (!('inf' in lo) && !('inf' in hi) && lo.s === -1 && hi.s === 1 && lo.v === hi.v) {
        points.push(lo.v);
        continue;
      }
      const parts: string[] = [];
      if (!('inf' in lo)) {
        parts.push(`${expression} ${lo.s === -1 ? '>=' : '>'} ${valueSql(column, lo.v)}`);
      }
      if (!('inf' in hi)) {
        parts.push(`${expression} ${hi.s === -1 ? '<' : '<='} ${valueSql(column, hi.v)}`);
      }
      ors.push(parts.length > 0 ? `(${parts.join(' AND ')})` : `${expression} IS NOT NULL`);
    }
    if (points.length > 0) {
      ors.push(`${expression} IN (${points.map((value) => valueSql(column, value)).join(', ')})`);
    }
    if (set.nulls) ors.push(`${expression} IS NULL`);
    return ors.length > 0 ? `(${ors.join(' OR ')})` : 'FALSE';
  };
  const box = (value: Box) => {
    const parts = Object.entries(value)
      .filter(([, set]) => !isEverything(set))
      .sort(([a], [b]) => (a < b ? -1 : 1))
      .map(([dim, set]) => constraint(dim, set));
    return parts.length > 0 ? `(${parts.join(' AND ')})` : 'TRUE';
  };
  const region = (boxes: readonly Box[]) =>
    boxes.length > 0 ? `(${boxes.map(box).join(' OR ')})` : 'FALSE';
  return { box, region };
}
