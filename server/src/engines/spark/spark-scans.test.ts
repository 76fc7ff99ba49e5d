import { describe, expect, it } from 'vitest';
import { bindScans, scanOf } from './spark-scans.ts';

describe("Spark's scans", () => {
  const lake = 's3://bucket/medlake/lake/lab-results';
  const file = (release: string, index: number) =>
    `${lake}/hospital=h1/month=2024-01/release=${release}/part-${index}.parquet`;

  it('hands each file to Spark as a path of its own, never one glob of alternatives', () => {
    const sql = `SELECT count(*) FROM ${scanOf([file('r1', 0), file('r1', 1)])} AS t JOIN ${scanOf([file('r2', 0)])} AS u`;
    const bound = bindScans(sql);
    const [first, second] = bound.scans.map((scan) => scan.name);
    expect(bound.sql).toBe(`SELECT count(*) FROM ${first} AS t JOIN ${second} AS u`);
    expect(bound.scans).toEqual([
      {
        name: expect.stringMatching(/^medlake_scan_[0-9a-f]{16}_0$/),
        paths: [file('r1', 0), file('r1', 1)].map((path) => path.replace('s3://', 's3a://')),
        basePath: `${lake.replace('s3://', 's3a://')}`,
      },
      {
        name: expect.stringMatching(/^medlake_scan_[0-9a-f]{16}_1$/),
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
      { name: bound.scans[0]?.name, paths: ['/home/results/q1/result.parquet'] },
    ]);
  });

  it('names the scans of each statement apart from every other statement’s', () => {
    // Spark makes each name a temporary view of the one session all statements share.
    const sql = `SELECT * FROM ${scanOf([file('r1', 0)])} AS t`;
    const names = Array.from({ length: 50 }, () => bindScans(sql).scans[0]?.name);
    expect(new Set(names).size).toBe(names.length);
  });

  it('refuses a path that Spark would read as a pattern or that would end the list', () => {
    for (const path of [`${lake}/a,b.parquet`, `${lake}/{a,b}.parquet`, `${lake}/a*.parquet`]) {
      expect(() => scanOf([path])).toThrow(/characters/);
    }
    expect(() => scanOf([])).toThrow();
  });
});
