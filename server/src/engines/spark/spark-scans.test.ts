import { describe, expect, it } from 'vitest';
import { bindScans, scanOf } from './spark-scans.ts';

describe("Spark's scans", () => {
  const lake = 's3://bucket/medlake/lake/lab-results';
  const file = (release: string, index: number) =>
    `${lake}/hospital=h1/month=2024-01/release=${release}/part-${index}.parquet`;

  it('hands each file to Spark as a path of its own, never one glob of alternatives', () => {
    const sql = `SELECT count(*) FROM ${scanOf([file('r1', 0), file('r1', 1)])} AS t JOIN ${scanOf([file('r2', 0)])} AS u`;
    const bound = bindScans(sql);
    expect(bound.sql).toBe('SELECT count(*) FROM medlake_scan_0 AS t JOIN medlake_scan_1 AS u');
    expect(bound.scans).toEqual([
      {
        name: 'medlake_scan_0',
        paths: [file('r1', 0), file('r1', 1)].map((path) => path.replace('s3://', 's3a://')),
        basePath: `${lake.replace('s3://', 's3a://')}`,
      },
      {
        name: 'medlake_scan_1',
        paths: [file('r2', 0).replace('s3://', 's3a://')],
        basePath: `${lake.replace('s3://', 's3a://')}`,
      },
    ]);
    expect(bound.sql).not.toContain('{');
  });

  it("reads a release's folder as its files by name, as many as the catalog lists", () => {
    const folder = `${lake}/hospital=h1/month=2024-01/release=r1`;
    const bound = bindScans(`SELECT * FROM ${scanOf([{ folder, files: 3 }])} AS t`);
    expect(bound.scans[0]?.paths).toEqual(
      [file('r1', 0), file('r1', 1), file('r1', 2)].map((path) => path.replace('s3://', 's3a://')),
    );
  });

  it('reads a file outside the partition folders (a result) without partition columns', () => {
    const bound = bindScans(`SELECT * FROM ${scanOf(['/home/results/q1/result.parquet'])} AS r`);
    expect(bound.scans).toEqual([
      { name: 'medlake_scan_0', paths: ['/home/results/q1/result.parquet'] },
    ]);
  });

  it('refuses a path that Spark would read as a pattern or that would end the list', () => {
    for (const path of [`${lake}/a,b.parquet`, `${lake}/{a,b}.parquet`, `${lake}/a*.parquet`]) {
      expect(() => scanOf([path])).toThrow(/characters/);
    }
    expect(() => scanOf([])).toThrow();
  });
});
