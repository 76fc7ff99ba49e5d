import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestPlatform, type TestPlatform } from '../../test/helper.ts';
import { ingest, prepareDataset, synthea } from '../../test/ingest-helpers.ts';
import { researcherWithAccess, runQuery } from '../../test/query-helpers.ts';
import type { User } from '../catalog/users-repository.ts';
import type { SqlStatement } from '../engines/types.ts';
import { submitQuery } from '../use-cases/queries/submit-query.ts';

/**
 * DuckDB runs a statement with its values inlined as typed literals (inline-parameters.ts).
 * Attack, as an aggregate researcher through the use-cases: every spec field that becomes a
 * value (filters, cohort criteria, codes, dates, months, bins, bands, percentiles) carries
 * hostile text (quotes, comment markers, dollar quoting, backslashes, lone surrogates,
 * placeholder look-alikes) and numbers at the edges. The promise: a value stays data, and
 * every statement the engine runs for those queries (the query itself, the disclosure's, the
 * release ledger's truth) gives the same answer inlined as with its parameters bound.
 */
const dataset = 'synthea-observations';

const hostile = [
  "' OR TRUE --",
  "x'); DROP TABLE t; SELECT ('",
  "92240' --",
  '$$ OR TRUE $$',
  '$tag$ x $tag$',
  '/* open',
  '*/ close',
  'back\\slash\\',
  "\\' OR 1=1 --",
  '$1',
  '$2 $10',
  "E'\\x41'",
  "''",
  '"quoted"',
  'x'.repeat(1000),
];

const edgeNumbers = [
  0,
  -0,
  1e308,
  -1e308,
  5e-324,
  2_147_483_647,
  2_147_483_648,
  -2_147_483_649,
  9_007_199_254_740_991,
  2 ** 53 + 2,
  2 ** 62,
  -(2 ** 63),
  2 ** 63,
  44.0,
  44 + 2 ** -47,
  0.1 + 0.2,
];

describe('values inlined into DuckDB statements', () => {
  let platform: TestPlatform;
  let researcher: User;
  let oracle: User;
  /** Every statement the engine ran while the attacks ran. */
  const statements: SqlStatement[] = [];

  beforeAll(async () => {
    platform = await createTestPlatform();
    await prepareDataset(platform, dataset);
    await ingest(platform, { file: synthea('all'), month: '2021-06' });
    researcher = await researcherWithAccess(platform, 'agg@example.org', dataset, 'aggregate');
    oracle = await researcherWithAccess(platform, 'oracle@example.org', dataset, 'row');
    const rows = platform.engine.rows.bind(platform.engine);
    platform.engine.rows = async (statement, options) => {
      statements.push({ sql: statement.sql, params: [...statement.params] });
      return rows(statement, options);
    };
  }, 180_000);

  afterAll(() => platform?.dispose());

  /** The patients shown by the aggregate user, and the oracle's rows, for one filter. */
  const both = async (where: object) => {
    const aggregate = await runQuery(platform, researcher, {
      dataset,
      measures: [{ fn: 'patients' }, { fn: 'count' }],
      where,
    });
    const rows = await runQuery(platform, oracle, { dataset, select: ['patient'], where });
    return { aggregate, rows };
  };

  it('hostile text in every string field is compared as data, and matches nothing', async () => {
    for (const value of hostile) {
      for (const where of [
        { column: 'zip', op: 'eq', value },
        { column: 'zip', op: 'in', values: [value, `${value.slice(0, 999)}'`] },
        // Each field at most as long as the spec allows it.
        { column: 'code', op: 'starts_with', value: value.slice(0, 200) },
        { op: 'code', codes: [value.slice(0, 100)] },
        { column: 'sex', op: 'between', min: value, max: value },
      ]) {
        const { aggregate, rows } = await both(where);
        expect(rows.job.status, `${JSON.stringify(where)}: ${JSON.stringify(rows.job.error)}`).toBe(
          'succeeded',
        );
        expect(rows.rows, JSON.stringify(where)).toEqual([]);
        expect(aggregate.job.status, JSON.stringify(aggregate.job.error)).toBe('succeeded');
        const shown = aggregate.rows[0] as { patients?: unknown; suppressed?: boolean };
        // An empty result's total is shown as no patients (null) or 0.
        expect(shown.suppressed || !shown.patients, JSON.stringify(shown)).toBe(true);
      }
    }
  }, 600_000);

  it('a lone surrogate in any string of a spec is refused clearly, naming where it is', async () => {
    const specs = [
      { where: { column: 'zip', op: 'eq', value: 'lone \uD800 high' } },
      { where: { op: 'code', codes: ['29463-7', 'lone \uDC00 low'] } },
      { where: { column: 'code', op: 'starts_with', value: '\uDFFF\uD800' } },
    ];
    for (const spec of specs) {
      // Before: PostgreSQL's "invalid input syntax for type json" as the spec was stored.
      await expect(
        submitQuery(
          platform,
          { user: researcher, source: 'test' },
          {
            dataset,
            measures: [{ fn: 'patients' }],
            ...spec,
          },
        ),
      ).rejects.toMatchObject({
        code: 'invalid_spec',
        message: expect.stringMatching(/^The query spec is invalid: where\..*surrogate/),
      });
    }
    // A pair is a character, and is data like any other.
    const { job } = await runQuery(platform, researcher, {
      dataset,
      measures: [{ fn: 'patients' }],
      where: { column: 'zip', op: 'eq', value: '\uD834\uDD1E' },
    });
    expect(job.status).toBe('succeeded');
  });

  it('numbers at the edges filter the same rows as the oracle counts', async () => {
    const { rows: all } = await runQuery(platform, oracle, {
      dataset,
      select: ['patient', 'value'],
    });
    for (const value of edgeNumbers) {
      for (const op of ['gte', 'lt', 'eq'] as const) {
        const where = { column: 'value', op, value };
        const { rows } = await runQuery(platform, oracle, { dataset, select: ['patient'], where });
        const expected = all.filter((row) => {
          const v = row.value;
          if (typeof v !== 'number') return false;
          return op === 'gte' ? v >= value : op === 'lt' ? v < value : v === value;
        });
        expect(rows.length, JSON.stringify(where)).toBe(expected.length);
      }
    }
  }, 600_000);

  it('every statement run gives the same answer inlined as with bound parameters', async () => {
    // Groupings, bins, bands, dates, months, cohorts and percentiles: their values too.
    const specs = [
      { groupBy: [{ column: 'value', binWidth: 0.1 }], measures: [{ fn: 'patients' }] },
      {
        groupBy: [{ column: 'value', binWidth: 7, binOffset: -0.5 }],
        measures: [{ fn: 'patients' }, { fn: 'percentile', column: 'value', p: 0.5 }],
      },
      { groupBy: [{ column: 'value', bands: [18, 45, 65] }], measures: [{ fn: 'patients' }] },
      {
        groupBy: [{ column: 'sex' }],
        measures: [{ fn: 'patients' }, { fn: 'mean', column: 'value' }],
        where: { op: 'date_range', from: '2010-01-01', to: '2020-12-31' },
      },
      {
        groupBy: [{ column: 'observed_at', bucket: 'year' }],
        measures: [{ fn: 'patients' }],
        where: {
          and: [
            { op: 'months', from: '2021-01', to: '2021-12' },
            { column: 'zip', op: 'ne', value: "' OR TRUE --" },
          ],
        },
      },
      {
        measures: [{ fn: 'patients' }],
        cohort: {
          criteria: [{ where: { op: 'code', codes: ['29463-7', "29463-7' --"] }, minRows: 2 }],
        },
      },
      {
        groupBy: [{ column: 'code' }],
        measures: [{ fn: 'patients' }, { fn: 'histogram', column: 'value', binWidth: 25 }],
        where: { column: 'value', op: 'between', min: -0, max: 1e308 },
      },
      { measures: [{ fn: 'patients' }], where: { column: 'zip', op: 'ne', value: '92240' } },
      { measures: [{ fn: 'patients' }] },
    ];
    for (const spec of specs) {
      const before = statements.length;
      const { job } = await runQuery(platform, researcher, { dataset, ...spec });
      if (job.status !== 'succeeded') {
        const last = statements.at(-1)!;
        const error = await platform.engine.rows(last).then(
          () => 'no error',
          (e: Error) => e.message,
        );
        expect.fail(
          `${JSON.stringify(spec)} ${statements.length - before}: ${error}\n${last.sql}\n${JSON.stringify(last.params)}`,
        );
      }
    }
    expect(statements.length).toBeGreaterThan(specs.length);
    const withValues = statements.filter((statement) => statement.params.length > 0);
    expect(withValues.length).toBeGreaterThan(0);
    let compared = 0;
    for (const statement of withValues) {
      // A NaN value has no literal: the statement then runs with its parameters bound.
      const bound: SqlStatement = {
        sql: `SELECT * FROM (${statement.sql}) AS q WHERE $${statement.params.length + 1} IS NOT NULL`,
        params: [...statement.params, Number.NaN],
      };
      const inlined: SqlStatement = {
        sql: `SELECT * FROM (${statement.sql}) AS q`,
        params: statement.params,
      };
      // Doubles to 12 digits: DuckDB's parallel sums add in any order, either way.
      const sorted = (rows: Array<Record<string, unknown>>) =>
        rows
          .map((row) =>
            JSON.stringify(row, (_, value: unknown) =>
              typeof value === 'number' ? Number(value.toPrecision(12)) : value,
            ),
          )
          .sort();
      const [a, b] = await Promise.allSettled([
        platform.engine.rows(bound),
        platform.engine.rows(inlined),
      ]);
      const describe = (outcome: PromiseSettledResult<Array<Record<string, unknown>>>) =>
        outcome.status === 'fulfilled'
          ? sorted(outcome.value)
          : `error: ${String((outcome.reason as Error).message).split('\n')[0]}`;
      expect(describe(b), `${statement.sql}\n${JSON.stringify(statement.params)}`).toEqual(
        describe(a),
      );
      compared += 1;
    }
    expect(compared).toBe(withValues.length);
  }, 600_000);
});
