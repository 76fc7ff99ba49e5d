import {
  groupOutputName,
  measureOutputName,
  type CohortCriterion,
  type Condition,
  type Filter,
  type Group,
  type LakeColumnType,
  type Measure,
  type QuerySpec,
} from '@medlake/shared';
import { AppError, type ErrorDetail } from '../errors.ts';
import { dateShiftKeyOf, holderShiftDays } from '../privacy/privacy-secrets.ts';
import { isNumeric, isTemporal, type QueryColumn } from './query-columns.ts';
import type { ScanFiles, SqlDialect } from '../engines/sql-dialect.ts';
import {
  partialsPay,
  perPatientFirst,
  type Combine,
  type SplitAggregate,
} from './per-patient-first.ts';

/** A column of a query's result, as the service and the web app see it. */
export type ResultColumn = {
  name: string;
  kind: 'group' | 'measure' | 'row';
  type: LakeColumnType | 'histogram';
  /** For measures: which function made it. Counts are what disclosure control suppresses. */
  fn?: Measure['fn'];
  /** For percentiles: the fraction asked for. */
  p?: number;
  /**
   * For histograms compiled for aggregate access: the hidden column with the distinct patients
   * of each bin, which decide whether a bin may be shown.
   */
  binPatients?: string;
  /**
   * For means of a clamped column (noisy answers): the hidden column with the values counted;
   * the measure's own column then holds their clamped sum in steps, as a sum does.
   */
  meanCount?: string;
  /**
   * For percentiles of a clamped column (noisy answers): the column holds the counts of the
   * clamped values in `bins` equal bins from `min`, `width` wide; the noise module draws the
   * percentile from the noisy counts.
   */
  noisyBins?: { bins: number; min: number; width: number };
  /**
   * For percentiles compiled for aggregate access: the hidden column with the values counted,
   * and the most values one patient has: hidden columns that count it in the group and among
   * all matching rows, or a bound from the catalog that holds for both.
   */
  spread?: { values: string; perPatient: { inGroup: string; inAll: string } | { atMost: number } };
};

export type Statement = { sql: string; params: unknown[] };

export type CompiledQuery = Statement & {
  columns: ResultColumn[];
  /**
   * For a grouped query compiled for aggregate access: the total over the rows of the groups
   * of at least `minGroupPatients` patients only. When groups are withheld, this is the total
   * shown, so that no hidden remainder can be worked out from it.
   */
  publishedTotal?: Statement;
  /**
   * For a grouped query: the grand total, in a SELECT of its own over the same rows, or over
   * the same partials per group and patient where the measures allow (per-patient-first.ts),
   * run with the groups' in one statement (run-aggregate.ts). Beside the groups as a grouping set it
   * cost 10–15 % more on DuckDB (measured on the bench lake), and a percentile over all the
   * matching rows costs as much again as the groups' (every value sorted once more); the
   * margin disclosure control needs is counts, so the total leaves percentiles out (null).
   */
  total?: Statement;
};

export type CompileContext = {
  dialect: SqlDialect;
  columns: ReadonlyMap<string, QueryColumn>;
  codeSets: Readonly<Record<string, readonly string[]>>;
  /** The Parquet files the main query reads, and those each cohort criterion reads. */
  files: { main: readonly ScanFiles[]; cohort: ReadonlyArray<readonly ScanFiles[]> };
  /**
   * The key of the holder the result is for (privacy/privacy-secrets.ts): with it, every
   * pseudonym the query shows, groups by or compares is the holder's own, so that two
   * projects' results cannot be joined on their pseudonyms; and every shifted event date is
   * moved by the holder's own shift per patient, so that they cannot be joined on the dates.
   */
  holderKey?: string;
  /**
   * Count at most this many matching rows of each patient (the earliest first), so that one
   * patient moves a row count by at most this much: the sensitivity noisy counts are scaled to.
   */
  rowsPerPatient?: number;
  /**
   * Sums of these columns are clamped to the range and counted in whole steps (an integer),
   * for noisy answers; the noise module turns them back into values.
   */
  clampedSums?: Readonly<Record<string, { min: number; max: number; step: number }>>;
  /**
   * Keep each patient's rows in at most this many groups (those first in an order of the
   * patient's own, by a hash of patient and group), so that one patient changes at most this
   * many groups' counts: the sensitivity noisy patient counts are scaled to.
   */
  groupsPerPatient?: number;
  /**
   * Set for aggregate access: groups of fewer patients than this are withheld, so the compiler
   * adds what disclosure control needs to judge them (patients per histogram bin, the total
   * over the groups shown).
   */
  minGroupPatients?: number;
  /**
   * With minGroupPatients: at least the most rows one patient has in the files read (from the
   * catalog). Percentiles are judged with it instead of counting per patient, which takes two
   * window passes; where it cannot show a percentile safe, the caller compiles without it.
   */
  mostRowsPerPatient?: number;
};

/** A group's value on each row (`key`), and the label shown for a key after grouping. */
type GroupKey = { key: string; label: (key: string) => string };

/** A measure's SQL; for some, the hidden figures that judging or finishing it needs. */
type CompiledMeasure = {
  expression: string;
  type: ResultColumn['type'];
  /** A histogram's bin of the row. */
  bin?: string;
  /** A noisy mean's count of values. */
  count?: string;
  /** A noisy percentile's bins. */
  noisyBins?: ResultColumn['noisyBins'];
  /**
   * A percentile's fraction (its placeholder): the measure is computed per group only, the
   * grand total leaves it out (see `total` on CompiledQuery).
   */
  perGroupOnly?: string;
  /**
   * How the measure is finished from partials per group and patient (per-patient-first.ts);
   * for a mean, `meanOf` is the value averaged. None: it needs every row.
   */
  combine?: Combine;
  meanOf?: string;
};

/** Hidden columns every aggregate carries, for disclosure control; never shown as such. */
export const hiddenRows = '__rows';
export const hiddenPatients = '__patients';
/** 1 on the row that holds the grand total, 0 on group rows. */
export const hiddenTotal = '__total';

/**
 * Names a result column may not take: the service's own fields of a result row. An alias that
 * took one would overwrite it (`"as": "suppressed"` would unhide a suppressed row).
 */
export function isReservedResultName(name: string): boolean {
  return name === 'suppressed' || name.startsWith('__');
}

/**
 * Compiles a query spec to one parameterized SQL statement. Column names come only from the
 * dataset's columns (checked here, each problem named by its place in the spec); every value
 * a user wrote travels as a parameter. The planner has already replaced `last_months`.
 */
export function compileQuery(spec: QuerySpec, context: CompileContext): CompiledQuery {
  return new QueryCompiler(context).compile(spec);
}

/**
 * For the release ledger: the distinct patients of the groups of the spec's grouping that hold
 * 1 to minimum−1 patients (those an aggregate result withholds), counted per value of a coarser
 * grouping made of some of its groups (`coarse`: their indexes in the spec's `groupBy`; none for
 * the whole). Result columns `c0`, `c1`, … hold the coarse values and `patients` the count.
 */
export function compileWithheldPatients(
  spec: QuerySpec,
  context: CompileContext & { minGroupPatients: number },
  coarse: readonly number[],
): Statement {
  return new QueryCompiler(context).withheldPatients(spec, coarse);
}

/**
 * The most rows one patient has in the files a query reads (`context.files.main`), in result
 * column `most`: the exact figure that the catalog's bound, a sum over releases, stands in for.
 * Any group of a query over these files holds at most that many values of one patient.
 */
export function compileMostRowsPerPatient(context: CompileContext): Statement {
  const { dialect } = context;
  const patient = dialect.quoteIdentifier('patient');
  const perPatient = `SELECT ${patient}, count(*) AS n FROM ${dialect.scanParquet(context.files.main)} AS t GROUP BY ${patient}`;
  return { sql: `SELECT max(n) AS most FROM (${perPatient}) AS per_patient`, params: [] };
}

/**
 * For the release ledger: the condition a row `t` of the lake meets when it matches the spec's
 * filter and cohort, as compileQuery writes it (cohort criteria read `context.files.cohort`),
 * with its parameters numbered from 1. The ledger writes its own statement around it.
 */
export function compileRowCondition(
  spec: Pick<QuerySpec, 'where' | 'cohort'>,
  context: CompileContext,
): Statement {
  return new QueryCompiler(context, { shiftInScans: false }).rowCondition(spec);
}

/**
 * The column every scan of a holder's query over shifted dates carries: the holder's own shift
 * of the row's patient, in days (see `#shown`). Lake columns start with a letter, so it cannot
 * clash with one.
 */
const holderShiftColumn = '__holder_shift';

class QueryCompiler {
  readonly #context: CompileContext;
  readonly #params: unknown[] = [];
  readonly #problems: ErrorDetail[] = [];
  /** Each scan carries the holder's shift per row (holderShiftColumn) instead of each use. */
  readonly #shiftInScans: boolean;

  /**
   * `shiftInScans: false` writes the holder's shift into each use of a shifted date, for a
   * condition that another statement puts around its own scan of the lake (rowCondition).
   */
  constructor(context: CompileContext, { shiftInScans = true } = {}) {
    this.#context = context;
    this.#shiftInScans =
      shiftInScans &&
      context.holderKey !== undefined &&
      [...context.columns.values()].some((column) => column.shifted && isTemporal(column.type));
  }

  compile(spec: QuerySpec): CompiledQuery {
    const where = this.#matching(spec);
    const scan = this.#scan(this.#context.files.main);
    const compiled = spec.select
      ? this.#rows(spec, scan, where)
      : this.#aggregate(spec, scan, where);
    this.#throwProblems();
    return compiled;
  }

  rowCondition(spec: Pick<QuerySpec, 'where' | 'cohort'>): Statement {
    const sql = this.#matching(spec as QuerySpec);
    this.#throwProblems();
    return { sql, params: this.#params };
  }

  withheldPatients(spec: QuerySpec, coarse: readonly number[]): Statement {
    const where = this.#matching(spec);
    const groups = spec.groupBy.map((group, index) => this.#group(group, `groupBy[${index}]`));
    this.#throwProblems();
    const { dialect } = this.#context;
    const patient = this.#quote('patient');
    // Labelled on each row: the statement must hold every label's placeholder, shown or not.
    const inner = [
      't.*',
      ...groups.map(({ key, label }, index) => `${label(key)} AS __g${index}`),
    ].join(', ');
    const source = `(SELECT ${inner} FROM ${this.#bounded(this.#scan(this.#context.files.main), where)})`;
    const sized = this.#sized(source, groups.length);
    const minimum = this.#param(this.#context.minGroupPatients);
    const keys = coarse.map((index) => `__g${index}`);
    const list = [
      ...keys.map((key, index) => `${key} AS c${index}`),
      `${dialect.countDistinct(patient)} AS patients`,
    ];
    return {
      sql: `SELECT ${list.join(', ')} FROM (${sized}) AS g WHERE g.__gp < ${minimum}${keys.length > 0 ? ` GROUP BY ${keys.join(', ')}` : ''}`,
      params: this.#params,
    };
  }

  #rows(spec: QuerySpec, scan: string, where: string): CompiledQuery {
    const names = spec.select ?? [];
    const columns: ResultColumn[] = names.flatMap((name, index) => {
      const column = this.#column(name, `select[${index}]`);
      return column ? [{ name, kind: 'row' as const, type: column.type }] : [];
    });
    const order = this.#orderBy(spec, new Set(names));
    const limit = spec.limit === undefined ? '' : ` LIMIT ${this.#param(spec.limit)}`;
    const list = names
      .map((name) => {
        const value = this.#shown(name);
        return value === this.#quote(name) ? value : `${value} AS ${this.#quote(name)}`;
      })
      .join(', ');
    return {
      sql: `SELECT ${list} FROM ${scan} AS t WHERE ${where}${order}${limit}`,
      params: this.#params,
      columns,
    };
  }

  /**
   * Groups and measures over the matching rows. Sorting and limits are left to the service:
   * they must apply to the values after disclosure control, or the order of suppressed cells
   * would tell their sizes.
   */
  #aggregate(spec: QuerySpec, scan: string, where: string): CompiledQuery {
    const columns: ResultColumn[] = [];
    const groupKeys = spec.groupBy.map((group, index) => {
      columns.push({
        name: groupOutputName(group),
        kind: 'group',
        type: this.#groupType(group),
      });
      return this.#group(group, `groupBy[${index}]`);
    });
    const groupExpressions = groupKeys.map(({ key }) => key);
    const { dialect } = this.#context;
    const judged = this.#context.minGroupPatients !== undefined;
    const patient = this.#quote('patient');
    // What disclosure control needs to judge a measure for aggregate access, computed beside
    // it: windows over the matching rows, and hidden measures over those.
    const windows: string[] = [];
    // `inTotal`: what the grand total computes instead, where it needs less.
    const hidden: Array<{ name: string; expression: string; combine?: Combine; inTotal?: string }> =
      [];
    const hide = (name: string, expression: string, combine?: Combine, inTotal?: string) => {
      hidden.push({ name, expression, combine, inTotal });
      return name;
    };
    // Each measure as finished from per-patient partials, where it can be (per-patient-first.ts).
    const splits: Array<SplitAggregate | undefined> = [];
    // The total's expression of each measure, where it differs from the groups'.
    const inTotal = new Map<number, string>();
    // The exact percentiles of each column, by measure: their fractions' placeholders.
    const percentiles = new Map<string, Array<{ index: number; fraction: string }>>();
    const measures = spec.measures.map((measure, index) => {
      const { expression, type, bin, count, noisyBins, perGroupOnly, combine, meanOf } =
        this.#measure(measure, `measures[${index}]`);
      // Null in the total, with its placeholder kept: the total shares the groups' parameters.
      if (perGroupOnly !== undefined) {
        inTotal.set(index, `CAST(CAST(${perGroupOnly} AS DOUBLE) * NULL AS DOUBLE)`);
        if (measure.fn === 'percentile') {
          percentiles.set(measure.column, [
            ...(percentiles.get(measure.column) ?? []),
            { index, fraction: perGroupOnly },
          ]);
        }
      }
      const column: ResultColumn = {
        name: measureOutputName(measure),
        kind: 'measure',
        type,
        fn: measure.fn,
        ...(measure.fn === 'percentile' ? { p: measure.p } : {}),
      };
      columns.push(column);
      splits.push(
        combine && {
          name: this.#quote(column.name),
          expression: combine === 'mean' && meanOf !== undefined ? meanOf : expression,
          combine,
        },
      );
      if (count !== undefined) column.meanCount = hide(`__mc${index}`, count, 'count');
      if (noisyBins) column.noisyBins = noisyBins;
      if (judged && bin !== undefined) {
        // Each bin's distinct patients: the first row of each patient in each group and bin
        // carries the bin, the others none. (Spark numbers rows only in an ordered window; any
        // order will do.)
        const flag = `__hb${index}`;
        windows.push(
          `CASE WHEN row_number() OVER (PARTITION BY ${[...groupExpressions, patient, bin].join(', ')} ORDER BY ${patient}) = 1 THEN ${bin} END AS ${flag}`,
        );
        column.binPatients = hide(`__hp${index}`, dialect.histogram(flag));
      }
      if (judged && measure.fn === 'percentile' && !noisyBins) {
        // How many values lie on each side of a percentile is known from the values counted;
        // how many patients, from the most values one patient has (in the group, and in all),
        // or from the catalog's bound on it.
        const value = this.#quote(measure.column);
        const bound = this.#context.mostRowsPerPatient;
        if (bound === undefined) {
          windows.push(
            `count(${value}) OVER (PARTITION BY ${[...groupExpressions, patient].join(', ')}) AS __pg${index}`,
            `count(${value}) OVER (PARTITION BY ${patient}) AS __pa${index}`,
          );
        }
        column.spread = {
          // The total's percentiles are null (see `total`) and never judged: it counts no values,
          // which would read the column over every matching row again for nothing.
          values: hide(`__pn${index}`, `count(${value})`, undefined, 'CAST(NULL AS BIGINT)'),
          perPatient:
            bound === undefined
              ? {
                  inGroup: hide(`__pmg${index}`, `max(__pg${index})`),
                  inAll: hide(`__pma${index}`, `max(__pa${index})`),
                }
              : { atMost: bound },
        };
      }
      return expression;
    });
    // Several percentiles of one column are one aggregate that holds and sorts the group's values
    // once, instead of once per percentile: the median and 90th percentile per code over the
    // bench lake, 1.05 against 1.20 s of CPU for the two (docs/benchmarks.md, 2026-12-07).
    for (const [name, list] of percentiles) {
      if (list.length < 2) continue;
      const fractions = list.map(({ fraction }) => fraction);
      list.forEach(({ index }, position) => {
        measures[index] = dialect.percentileOf(this.#quote(name), fractions, position);
      });
    }
    this.#checkNames(spec, columns);
    // The service sorts after disclosure control; here the names are only checked.
    this.#orderBy(spec, new Set(columns.map((column) => column.name)));

    const inner = [
      't.*',
      ...groupExpressions.map((expression, index) => `${expression} AS __g${index}`),
      ...windows,
    ].join(', ');
    const measureColumns = columns.filter((column) => column.kind === 'measure');
    const listOf = (expressions: readonly string[], forTotal = false) =>
      [
        ...expressions.map(
          (expression, index) =>
            `${expression} AS ${this.#quote(measureColumns[index]?.name ?? '')}`,
        ),
        ...hidden.map(
          ({ name, expression, inTotal: total }) =>
            `${(forTotal && total) || expression} AS ${name}`,
        ),
      ].join(', ');
    const hiddenCounts = `count(*) AS ${hiddenRows}, ${dialect.countDistinct(patient)} AS ${hiddenPatients}`;
    // With groups, the grand total (the summary's headline figures when no group is withheld)
    // comes apart, in `total`; without, the one row is the total.
    const grouped = groupExpressions.length > 0;
    const keys = groupExpressions.map((_, index) => `__g${index}`).join(', ');
    const groupBy = grouped ? ` GROUP BY ${keys}` : '';
    const totalFlag = `, ${grouped ? 0 : 1} AS ${hiddenTotal}`;
    const rows = this.#groupsBounded(
      `(SELECT ${inner} FROM ${this.#bounded(scan, where)})`,
      groupKeys,
    );
    // Grouped by one or two columns (none a date bucket of a month or less), counts, sums, means
    // and extremes are finished from partials per group and patient (by more, the partials
    // outgrow memory, and by such a bucket they are about as many as the rows: partialsPay); a
    // percentile, histogram or deviation needs the rows themselves, and so does a window. Without
    // groups there is one distinct count anyway, and the partials gain nothing.
    const split = [
      ...splits,
      ...hidden.map(({ name, expression, combine }) => combine && { name, expression, combine }),
    ];
    const { source, groupList, totalList } =
      partialsPay(spec.groupBy) &&
      windows.length === 0 &&
      split.every((aggregate) => aggregate !== undefined)
        ? perPatientFirst(dialect, rows, groupExpressions.length, split, {
            rows: hiddenRows,
            patients: hiddenPatients,
          })
        : {
            source: rows,
            groupList: `${listOf(measures)}, ${hiddenCounts}`,
            // The total's measures: those of the groups, less the percentiles.
            totalList: `${listOf(
              measures.map((expression, index) => inTotal.get(index) ?? expression),
              true,
            )}, ${hiddenCounts}`,
          };
    const outer = [
      ...groupKeys.map(
        ({ label }, index) =>
          `${label(`__g${index}`)} AS ${this.#quote(columns[index]?.name ?? '')}`,
      ),
      groupList,
    ].join(', ');
    const params = [...this.#params];
    const compiled: CompiledQuery = {
      sql: `SELECT ${outer}${totalFlag} FROM ${source} AS g${groupBy}`,
      params,
      columns,
    };
    // The total's groups are the label of no key: NULL, of the label's type, in a statement
    // that holds the labels' placeholders (the published total runs on its own, and DuckDB
    // refuses a parameter that no placeholder takes).
    const nullGroups = groupKeys
      .map(({ label }, index) => `${label('NULL')} AS ${this.#quote(columns[index]?.name ?? '')}`)
      .join(', ');
    if (grouped) {
      compiled.total = {
        sql: `SELECT ${nullGroups}, ${totalList}, 1 AS ${hiddenTotal} FROM ${source} AS g`,
        params,
      };
    }
    const minimum = this.#context.minGroupPatients;
    if (minimum !== undefined && groupExpressions.length > 0) {
      // The same rows, less those of groups under the minimum: one window counts each group's
      // patients. Its parameters are the main statement's and the minimum after them.
      const sized = this.#sized(source, groupExpressions.length);
      compiled.publishedTotal = {
        sql: `SELECT ${nullGroups}, ${totalList}, 1 AS ${hiddenTotal} FROM (${sized}) AS g WHERE g.__gp >= ${dialect.placeholder(params.length + 1)}`,
        params: [...params, minimum],
      };
    }
    return compiled;
  }

  /** The condition a row must meet: the spec's filter and cohort. */
  #matching(spec: QuerySpec): string {
    const conditions: string[] = [];
    if (spec.where) conditions.push(this.#filter(spec.where, 'where'));
    if (spec.cohort) conditions.push(this.#cohort(spec.cohort));
    return conditions.length > 0 ? conditions.join(' AND ') : 'TRUE';
  }

  /** The rows of `source` (with groups __g0, __g1, …), each with its group's patients, `__gp`. */
  #sized(source: string, groups: number): string {
    const keys = Array.from({ length: groups }, (_, index) => `__g${index}`);
    const patients = this.#context.dialect.countDistinctOver(this.#quote('patient'), keys);
    return `SELECT w.*, ${patients} AS __gp FROM ${source} AS w`;
  }

  #throwProblems(): void {
    if (this.#problems.length === 0) return;
    throw new AppError(
      'invalid_spec',
      `The query spec has ${this.#problems.length === 1 ? 'a problem' : `${this.#problems.length} problems`}: ${this.#problems[0]?.path}: ${this.#problems[0]?.message}`,
      this.#problems,
    );
  }

  /**
   * The rows of `source` (with groups __g0, __g1, …) in at most groupsPerPatient groups of each
   * patient, when that is set. The groups kept are the patient's first by a hash of patient and
   * group, which no other patient's rows can change; the groups follow the hash in the order so
   * that two groups never share a rank. (Only noisy answers set it, and they have no windows.)
   */
  #groupsBounded(source: string, groups: readonly GroupKey[]): string {
    const limit = this.#context.groupsPerPatient;
    if (limit === undefined || groups.length === 0) return source;
    const patient = this.#quote('patient');
    // Hashed and ordered by the groups as shown, as the labels are what the patient is in.
    const keys = groups.map(({ label }, index) => label(`r.__g${index}`));
    const rank = `dense_rank() OVER (PARTITION BY r.${patient} ORDER BY hash(r.${patient}, ${keys.join(', ')}), ${keys.join(', ')})`;
    return `(SELECT * FROM (SELECT r.*, ${rank} AS __gk FROM ${source} AS r) AS k WHERE k.__gk <= ${this.#param(limit)})`;
  }

  /** The matching rows, `t`, at most rowsPerPatient of each patient when that is set. */
  #bounded(scan: string, where: string): string {
    const limit = this.#context.rowsPerPatient;
    if (limit === undefined) return `${scan} AS t WHERE ${where}`;
    const patient = this.#quote('patient');
    const date = [...this.#context.columns.values()].find((column) => column.primaryDate);
    // Ties on the date (a panel's results share one time) are broken by every other column, so
    // that the same rows are kept each time a question is asked, however the files are read:
    // the noise is drawn anew only for a new question, and the same noise over other rows
    // would give away the difference between them.
    const order = [
      ...(date ? [date.name] : []),
      ...[...this.#context.columns.keys()].filter((name) => name !== date?.name),
    ]
      .map((name) => `t.${this.#quote(name)} NULLS LAST`)
      .join(', ');
    const numbered = `SELECT t.*, row_number() OVER (PARTITION BY t.${patient} ORDER BY ${order}) AS __n FROM ${scan} AS t WHERE ${where}`;
    return `(SELECT * FROM (${numbered}) AS b WHERE b.__n <= ${this.#param(limit)}) AS t`;
  }

  /**
   * A column as the result shows it: a pseudonym as the holder's own, and a shifted event date
   * moved again by the holder's own shift for the row's patient (from 1 to 182 days either
   * way, never 0): the same for all of a patient's rows, so intervals are kept.
   */
  #shown(name: string): string {
    const quoted = this.#quote(name);
    const { holderKey, columns, dialect } = this.#context;
    const column = columns.get(name);
    if (!holderKey || !column) return quoted;
    if (column.linkage) return dialect.keyedPseudonym(quoted, this.#param(holderKey));
    if (column.shifted && isTemporal(column.type)) {
      const days = this.#shiftInScans
        ? holderShiftColumn
        : this.#holderShift(this.#quote('patient'), holderKey);
      return dialect.addDays(quoted, days, column.type as 'date' | 'timestamp');
    }
    return quoted;
  }

  /**
   * The holder's shift of a patient's dates, in days: a keyed SHA-256 of the pseudonym, the
   * costliest expression of a holder's query (about 0.5 µs a row on DuckDB, measured). Every
   * use of a shifted date used to compute it again, with a placeholder of its own that kept the
   * engine from seeing the copies as one; each scan now computes it once per row
   * (holderShiftColumn), and the engines drop it where no shifted date is used.
   */
  #holderShift(patient: string, holderKey: string): string {
    const draw = this.#context.dialect.keyedInteger(
      patient,
      this.#param(dateShiftKeyOf(holderKey)),
    );
    // m = draw mod 364 gives m + 1 for m ≤ 181 and m − 364 above: ±1..182, in one pass.
    const span = holderShiftDays;
    return `(((${draw} % ${2 * span}) + ${span + 1}) % ${2 * span + 1} - ${span})`;
  }

  /**
   * A group's key on each row, and its label made from the key after grouping. Age bands are
   * keyed by their number (0, 1, …) and labelled once per group, so that the engine groups
   * small integers instead of text: about 15 % of a query by age band on DuckDB.
   */
  #group(group: Group, path: string): GroupKey {
    const as = (key: string): GroupKey => ({ key, label: (grouped) => grouped });
    const column = this.#column(group.column, `${path}.column`);
    if (!column) return as('NULL');
    const value = this.#shown(group.column);
    const { dialect } = this.#context;
    if ('bucket' in group) {
      if (!isTemporal(column.type))
        this.#problem(`${path}.bucket`, `${group.column} is not a date`);
      return as(dialect.timeBucket(value, group.bucket));
    }
    if ('bands' in group) {
      if (!isNumeric(column.type)) {
        this.#problem(`${path}.bands`, `${group.column} is not a number`);
        return as('NULL');
      }
      const bounds = [...new Set(group.bands)].sort((a, b) => a - b);
      const labels = [
        ...bounds.map((bound, index) => `${index === 0 ? 0 : bounds[index - 1]}-${bound - 1}`),
        `${bounds.at(-1)}+`,
      ].map((label) => this.#param(label));
      const below = bounds.map((bound) => this.#param(bound));
      // An unknown value meets no condition: it has no band.
      const key = `CASE ${below.map((bound, index) => `WHEN ${value} < ${bound} THEN ${index}`).join(' ')} WHEN ${value} >= ${below.at(-1)} THEN ${bounds.length} END`;
      return {
        key,
        label: (grouped) =>
          `CASE ${grouped} ${labels.map((label, index) => `WHEN ${index} THEN ${label}`).join(' ')} END`,
      };
    }
    if ('binWidth' in group) {
      if (!isNumeric(column.type)) {
        this.#problem(`${path}.binWidth`, `${group.column} is not a number`);
        return as('NULL');
      }
      return as(this.#bin(value, group.binWidth, group.binOffset));
    }
    return as(value);
  }

  #groupType(group: Group): ResultColumn['type'] {
    if ('bucket' in group) return 'date';
    if ('bands' in group) return 'varchar';
    if ('binWidth' in group) return 'double';
    return this.#context.columns.get(group.column)?.type ?? 'varchar';
  }

  #bin(value: string, width: number, offset: number): string {
    const w = this.#param(width);
    const o = this.#param(offset);
    // In binary: 56.8 / 0.1 is 567.9999999999999, so 56.8 falls in the 56.7 bin. The release
    // ledger's boxes ([label, label + width), compared in binary) and the attack suites' oracles
    // use this same arithmetic; a decimal rule for bins must change all three together.
    return `(floor((${value} - ${o}) / ${w}) * ${w} + ${o})`;
  }

  #measure(measure: Measure, path: string): CompiledMeasure {
    const { dialect } = this.#context;
    if (!('column' in measure)) {
      return measure.fn === 'count'
        ? { expression: 'count(*)', type: 'integer', combine: 'count' }
        : {
            expression: dialect.countDistinct(this.#quote('patient')),
            type: 'integer',
            combine: 'patients',
          };
    }
    return this.#columnMeasure(measure, path);
  }

  #columnMeasure(
    measure: Exclude<Measure, { fn: 'count' | 'patients' }>,
    path: string,
  ): CompiledMeasure {
    const { dialect } = this.#context;
    const column = this.#column(measure.column, `${path}.column`);
    if (!column) return { expression: 'NULL', type: 'double' };
    const value = this.#quote(measure.column);
    const numeric = isNumeric(column.type);
    const needsNumber = () =>
      this.#problem(`${path}.column`, `${measure.column} is not a number; ${measure.fn} needs one`);
    switch (measure.fn) {
      case 'min':
      case 'max':
        // As the holder sees the column: their pseudonyms, their dates.
        return {
          expression: `${measure.fn}(${this.#shown(measure.column)})`,
          type: column.type,
          combine: measure.fn,
        };
      case 'sum': {
        if (!numeric) needsNumber();
        const clamped = this.#clampedSum(measure.column);
        return { expression: clamped ?? `sum(${value})`, type: 'double', combine: 'sum' };
      }
      case 'mean': {
        if (!numeric) needsNumber();
        // Noisy answers: a noisy clamped sum over a noisy count of the values.
        const clamped = this.#clampedSum(measure.column);
        if (clamped) {
          return { expression: clamped, type: 'double', count: `count(${value})`, combine: 'sum' };
        }
        return { expression: dialect.mean(value), type: 'double', combine: 'mean', meanOf: value };
      }
      case 'stddev':
        if (!numeric) needsNumber();
        return { expression: dialect.stddev(value), type: 'double' };
      case 'percentile': {
        if (!numeric) needsNumber();
        const clamp = this.#context.clampedSums?.[measure.column];
        if (clamp) {
          // Noisy answers: the clamped values counted in equal bins, at most 100 of them and
          // none finer than the column's step; the percentile comes from the noisy counts.
          const bins = Math.max(1, Math.min(100, Math.round((clamp.max - clamp.min) / clamp.step)));
          const width = (clamp.max - clamp.min) / bins;
          const clamped = this.#clamped(value, clamp);
          const bin = `least(CAST(floor((${clamped} - ${this.#param(clamp.min)}) / ${this.#param(width)}) AS BIGINT), ${this.#param(bins - 1)})`;
          return {
            expression: dialect.histogram(bin),
            type: 'double',
            noisyBins: { bins, min: clamp.min, width },
          };
        }
        const fraction = this.#param(measure.p);
        return {
          expression: dialect.percentile(value, fraction),
          type: 'double',
          perGroupOnly: fraction,
        };
      }
      case 'histogram': {
        if (!numeric) needsNumber();
        const bin = this.#bin(value, measure.binWidth, measure.binOffset);
        return { expression: dialect.histogram(bin), type: 'histogram', bin };
      }
    }
  }

  /** A value kept within a range, for noisy answers. */
  #clamped(value: string, range: { min: number; max: number }): string {
    return `least(greatest(${value}, ${this.#param(range.min)}), ${this.#param(range.max)})`;
  }

  /** The sum of a column clamped to its range and counted in whole steps, for noisy answers. */
  #clampedSum(name: string): string | undefined {
    const clamp = this.#context.clampedSums?.[name];
    if (!clamp) return undefined;
    const clamped = this.#clamped(this.#quote(name), clamp);
    return `sum(CAST(round(${clamped} / ${this.#param(clamp.step)}) AS BIGINT))`;
  }

  #orderBy(spec: QuerySpec, allowed: ReadonlySet<string>): string {
    const parts = spec.orderBy.flatMap((order, index) => {
      if (!allowed.has(order.by)) {
        this.#problem(`orderBy[${index}].by`, `${order.by} is not a column of the result`);
        return [];
      }
      return [`${this.#quote(order.by)} ${order.direction === 'desc' ? 'DESC' : 'ASC'}`];
    });
    return parts.length > 0 ? ` ORDER BY ${parts.join(', ')}` : '';
  }

  #cohort(cohort: NonNullable<QuerySpec['cohort']>): string {
    const parts = cohort.criteria.map((criterion, index) => this.#criterion(criterion, index));
    return `(${parts.join(cohort.match === 'all' ? ' AND ' : ' OR ')})`;
  }

  /** "This row's patient had at least minRows rows matching the criterion" (or did not). */
  #criterion(criterion: CohortCriterion, index: number): string {
    const path = `cohort.criteria[${index}]`;
    const files = this.#context.files.cohort[index] ?? [];
    const before = this.#params.length;
    const conditions = [this.#filter(criterion.where, `${path}.where`)];
    if (criterion.from !== undefined || criterion.to !== undefined) {
      conditions.push(this.#dateRange({ from: criterion.from, to: criterion.to }, path));
    }
    if (files.length === 0) {
      // No release to read (none within the grant): no one matches. The conditions were
      // compiled to check them; their parameters go with them.
      this.#params.length = before;
      return criterion.exclude ? 'TRUE' : 'FALSE';
    }
    const patients =
      `SELECT ${this.#quote('patient')} FROM ${this.#scan(files)} AS c WHERE ${conditions.join(' AND ')} ` +
      `GROUP BY ${this.#quote('patient')} HAVING count(*) >= ${this.#param(criterion.minRows)}`;
    return `t.${this.#quote('patient')} ${criterion.exclude ? 'NOT IN' : 'IN'} (${patients})`;
  }

  #filter(filter: Filter, path: string): string {
    if ('and' in filter) {
      return `(${filter.and.map((part, i) => this.#filter(part, `${path}.and[${i}]`)).join(' AND ')})`;
    }
    if ('or' in filter) {
      return `(${filter.or.map((part, i) => this.#filter(part, `${path}.or[${i}]`)).join(' OR ')})`;
    }
    if ('not' in filter) return `(NOT ${this.#filter(filter.not, `${path}.not`)})`;
    return this.#condition(filter, path);
  }

  #condition(condition: Condition, path: string): string {
    switch (condition.op) {
      case 'code':
        return this.#codeIn(condition.codes, path);
      case 'code_set': {
        const codes = this.#context.codeSets[condition.name];
        if (!codes) {
          this.#problem(`${path}.name`, `there is no code set named ${condition.name}`);
          return 'FALSE';
        }
        return this.#codeIn(codes, path);
      }
      case 'date_range':
        return this.#dateRange(condition, path);
      case 'months': {
        const parts = [];
        if (condition.from) parts.push(`${this.#quote('month')} >= ${this.#param(condition.from)}`);
        if (condition.to) parts.push(`${this.#quote('month')} <= ${this.#param(condition.to)}`);
        return `(${parts.join(' AND ')})`;
      }
      case 'last_months':
        throw new Error('last_months must be resolved by the planner before compiling');
      default:
        break;
    }

    const column = this.#column(condition.column, `${path}.column`);
    if (!column) return 'FALSE';
    const value = this.#shown(condition.column);
    switch (condition.op) {
      case 'is_null':
        return `(${value} IS NULL)`;
      case 'not_null':
        return `(${value} IS NOT NULL)`;
      case 'starts_with':
        if (column.type !== 'varchar') {
          this.#problem(`${path}.value`, `${condition.column} is not text; starts_with needs text`);
        }
        return this.#context.dialect.startsWith(value, this.#param(condition.value));
      case 'in':
      case 'not_in': {
        const values = condition.values.map((item, i) =>
          this.#value(column, item, `${path}.values[${i}]`),
        );
        return `(${value} ${condition.op === 'in' ? 'IN' : 'NOT IN'} (${values.join(', ')}))`;
      }
      case 'between': {
        const parts = [];
        if (condition.min !== undefined) {
          parts.push(`${value} >= ${this.#value(column, condition.min, `${path}.min`)}`);
        }
        if (condition.max !== undefined) {
          parts.push(`${value} <= ${this.#value(column, condition.max, `${path}.max`)}`);
        }
        return `(${parts.join(' AND ')})`;
      }
      default: {
        const operators = { eq: '=', ne: '<>', lt: '<', lte: '<=', gt: '>', gte: '>=' } as const;
        const bound = this.#value(column, condition.value, `${path}.value`);
        return `(${value} ${operators[condition.op]} ${bound})`;
      }
    }
  }

  #codeIn(codes: readonly string[], path: string): string {
    const code = [...this.#context.columns.values()].find((column) => column.role === 'code');
    if (!code) {
      this.#problem(`${path}.op`, 'this dataset has no code column');
      return 'FALSE';
    }
    return `(${this.#quote(code.name)} IN (${codes.map((item) => this.#param(item)).join(', ')}))`;
  }

  #dateRange(condition: { column?: string; from?: string; to?: string }, path: string): string {
    const name =
      condition.column ??
      [...this.#context.columns.values()].find((column) => column.primaryDate)?.name;
    if (!name) {
      this.#problem(`${path}.column`, 'this dataset has no event date; name a date column');
      return 'FALSE';
    }
    const column = this.#column(name, `${path}.column`);
    if (!column) return 'FALSE';
    if (!isTemporal(column.type)) {
      this.#problem(`${path}.column`, `${name} is not a date`);
      return 'FALSE';
    }
    const { dialect } = this.#context;
    const value = this.#shown(name);
    const parts = [];
    if (condition.from !== undefined) {
      parts.push(`${value} >= ${dialect.castToTimestamp(this.#param(condition.from))}`);
    }
    if (condition.to !== undefined) {
      // A date-only upper bound includes that whole day.
      parts.push(
        condition.to.length === 10
          ? `${value} < ${dialect.dayAfter(this.#param(condition.to))}`
          : `${value} <= ${dialect.castToTimestamp(this.#param(condition.to))}`,
      );
    }
    return `(${parts.join(' AND ')})`;
  }

  /** A placeholder for a value compared with a column, after checking it fits the column. */
  #value(column: QueryColumn, value: string | number | boolean, path: string): string {
    const { dialect } = this.#context;
    const expected = isNumeric(column.type)
      ? 'number'
      : column.type === 'boolean'
        ? 'boolean'
        : 'string';
    if (typeof value !== expected) {
      this.#problem(
        path,
        `${column.name} holds ${describeType(column.type)}; ${JSON.stringify(value)} is not one`,
      );
      return 'NULL';
    }
    if (isTemporal(column.type)) {
      if (
        typeof value !== 'string' ||
        !/^\d{4}-\d{2}-\d{2}(T[\d:.]+Z?)?$/.test(value) ||
        Number.isNaN(Date.parse(value))
      ) {
        this.#problem(path, `${column.name} holds dates; write the value as YYYY-MM-DD`);
        return 'NULL';
      }
      return column.type === 'date'
        ? dialect.castToDate(this.#param(value))
        : dialect.castToTimestamp(this.#param(value));
    }
    if (column.name === 'month' && !/^\d{4}-(0[1-9]|1[0-2])$/.test(String(value))) {
      this.#problem(path, 'month is written YYYY-MM');
    }
    return this.#param(value);
  }

  #column(name: string, path: string): QueryColumn | undefined {
    const column = this.#context.columns.get(name);
    if (!column) {
      const known = [...this.#context.columns.keys()].join(', ');
      this.#problem(path, `${name} is not a column of this dataset (its columns: ${known})`);
    }
    return column;
  }

  /** Result column names are unique and never one of the service's own fields. */
  #checkNames(spec: QuerySpec, columns: ResultColumn[]): void {
    const paths = [
      ...spec.groupBy.map((group, index) =>
        group.as ? `groupBy[${index}].as` : `groupBy[${index}]`,
      ),
      ...spec.measures.map((measure, index) =>
        measure.as ? `measures[${index}].as` : `measures[${index}]`,
      ),
    ];
    const seen = new Set<string>();
    columns.forEach((column, index) => {
      const path = paths[index] ?? 'measures';
      if (isReservedResultName(column.name)) {
        this.#problem(
          path,
          `${column.name} is a name the service keeps for itself (suppressed, or starting with __); choose another "as"`,
        );
      } else if (seen.has(column.name)) {
        this.#problem(
          path,
          `the result would have two columns named ${column.name}; give one an "as"`,
        );
      }
      seen.add(column.name);
    });
  }

  /** The rows of these files; with the holder's shift of each row's patient where it applies. */
  #scan(files: readonly ScanFiles[]): string {
    const scan = this.#context.dialect.scanParquet(files);
    const { holderKey } = this.#context;
    if (!this.#shiftInScans || holderKey === undefined) return scan;
    const shift = this.#holderShift(`s.${this.#quote('patient')}`, holderKey);
    return `(SELECT s.*, ${shift} AS ${holderShiftColumn} FROM ${scan} AS s)`;
  }

  #quote(name: string): string {
    return this.#context.dialect.quoteIdentifier(name);
  }

  #param(value: unknown): string {
    this.#params.push(value);
    return this.#context.dialect.placeholder(this.#params.length);
  }

  #problem(path: string, message: string): void {
    this.#problems.push({ path, message });
  }
}

function describeType(type: LakeColumnType): string {
  if (isNumeric(type)) return 'numbers';
  if (type === 'boolean') return 'true or false';
  if (isTemporal(type)) return 'dates';
  return 'text';
}
