// The parts the query benchmarks share: the queries, and medlake serve as a child process.
import { spawn } from 'node:child_process';

export type BenchQuery = { name: string; spec: object; sql: string };

/**
 * Typical researcher queries over the bench lake, each as a medlake spec and as hand-written
 * DuckDB SQL over the lake's files (`lakeGlob`). The hand-written SQL answers the whole
 * question an aggregate result answers: its groups with their distinct patients, and the grand
 * total of rows and distinct patients over the matching rows (disclosure control needs both,
 * and the summary shows the total), written as a DuckDB user would: a second SELECT for the
 * total, in the same statement. Before 2026-12-06 it left the total out, which made medlake
 * look up to 1.4× slower than a query that answered less.
 */
export function benchQueries(lakeGlob: string): BenchQuery[] {
  const scan = `read_parquet('${lakeGlob}', hive_partitioning = true, hive_types_autocast = false, union_by_name = true)`;
  const lipids = `code IN ('2093-3', '2571-8', '2085-9', '18262-6', '13457-7')`;
  const hba1cCohort = `patient IN (SELECT patient FROM ${scan} WHERE code = '4548-4' AND value >= 6.5)`;
  return [
    {
      name: 'rows and patients per code',
      spec: { groupBy: [{ column: 'code' }], measures: [{ fn: 'count' }, { fn: 'patients' }] },
      sql: `SELECT code, count(*), count(DISTINCT patient) FROM ${scan} GROUP BY code
      UNION ALL SELECT NULL, count(*), count(DISTINCT patient) FROM ${scan}`,
    },
    {
      name: 'mean value per code, sex and age band',
      spec: {
        groupBy: [{ column: 'code' }, { column: 'sex' }, { column: 'age', bands: [18, 45, 65] }],
        measures: [{ fn: 'count' }, { fn: 'mean', column: 'value' }],
      },
      // An unknown age is in no band (ELSE would put it in the oldest).
      sql: `SELECT code, sex, CASE WHEN age < 18 THEN '0-17' WHEN age < 45 THEN '18-44' WHEN age < 65 THEN '45-64' WHEN age >= 65 THEN '65+' END AS band,
      count(*), avg(value), count(DISTINCT patient) FROM ${scan} GROUP BY ALL
      UNION ALL SELECT NULL, NULL, NULL, count(*), avg(value), count(DISTINCT patient) FROM ${scan}`,
    },
    {
      name: 'one hospital, one month, per code',
      spec: {
        where: {
          and: [
            { column: 'hospital', op: 'eq', value: 'h02' },
            { column: 'month', op: 'eq', value: '2024-06' },
          ],
        },
        groupBy: [{ column: 'code' }],
        measures: [{ fn: 'count' }, { fn: 'mean', column: 'value' }],
      },
      sql: `SELECT code, count(*), avg(value), count(DISTINCT patient) FROM ${scan} WHERE hospital = 'h02' AND month = '2024-06' GROUP BY code
      UNION ALL SELECT NULL, count(*), avg(value), count(DISTINCT patient) FROM ${scan} WHERE hospital = 'h02' AND month = '2024-06'`,
    },
    {
      name: 'monthly series of a code set',
      spec: {
        where: { op: 'code_set', name: 'lipid-panel' },
        groupBy: [{ column: 'code' }, { column: 'collected_at', bucket: 'month' }],
        measures: [{ fn: 'count' }, { fn: 'mean', column: 'value' }],
      },
      sql: `SELECT code, date_trunc('month', collected_at), count(*), avg(value), count(DISTINCT patient) FROM ${scan} WHERE ${lipids} GROUP BY ALL
      UNION ALL SELECT NULL, NULL, count(*), avg(value), count(DISTINCT patient) FROM ${scan} WHERE ${lipids}`,
    },
    {
      name: 'cohort: LDL of patients with HbA1c ≥ 6.5',
      spec: {
        where: { column: 'code', op: 'eq', value: '18262-6' },
        cohort: {
          criteria: [
            {
              where: {
                and: [
                  { column: 'code', op: 'eq', value: '4548-4' },
                  { column: 'value', op: 'gte', value: 6.5 },
                ],
              },
            },
          ],
        },
        groupBy: [{ column: 'sex' }],
        measures: [{ fn: 'patients' }, { fn: 'mean', column: 'value' }],
      },
      sql: `SELECT sex, count(DISTINCT patient), avg(value), count(*) FROM ${scan} WHERE code = '18262-6' AND ${hba1cCohort} GROUP BY sex
      UNION ALL SELECT NULL, count(DISTINCT patient), avg(value), count(*) FROM ${scan} WHERE code = '18262-6' AND ${hba1cCohort}`,
    },
    {
      name: 'median and 90th percentile per code',
      spec: {
        groupBy: [{ column: 'code' }],
        measures: [
          { fn: 'percentile', column: 'value', p: 0.5 },
          { fn: 'percentile', column: 'value', p: 0.9 },
        ],
      },
      // The total needs no percentile (medlake leaves it out of the total too).
      sql: `SELECT code, quantile_cont(value, 0.5), quantile_cont(value, 0.9), count(*), count(DISTINCT patient) FROM ${scan} GROUP BY code
      UNION ALL SELECT NULL, NULL, NULL, count(*), count(DISTINCT patient) FROM ${scan}`,
    },
  ];
}

/** `medlake serve` on a free port, as a child process; resolves once it listens. */
export async function startServer(
  medlakeHome: string,
  env: Record<string, string> = {},
): Promise<{ url: string; pid: number; stop(): Promise<void> }> {
  const bin = new URL('../server/bin/medlake.js', import.meta.url).pathname;
  const child = spawn(process.execPath, [bin, 'serve', '--port', '0'], {
    env: { ...process.env, ...env, MEDLAKE_HOME: medlakeHome, LOG_LEVEL: 'warn' },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const url = await new Promise<string>((resolve, reject) => {
    let output = '';
    child.stdout.on('data', (chunk: Buffer) => {
      output += chunk.toString();
      const match = /running at (http:\/\/[^/\s]+)\//.exec(output);
      if (match?.[1]) resolve(match[1]);
    });
    child.once('exit', (code) => reject(new Error(`medlake serve exited with ${code}`)));
  });
  return {
    url,
    pid: child.pid!,
    stop: () =>
      new Promise((resolve) => {
        child.once('exit', () => resolve());
        child.kill('SIGTERM');
      }),
  };
}
