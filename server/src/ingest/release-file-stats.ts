import type { DatasetContract } from '@medlake/shared';
import type { ReleaseFileStats } from '../catalog/release-files-repository.ts';
import type { ObjectStore } from '../storage/object-store.ts';
import type { IngestRunner } from './ingest-runner.ts';
import { releaseFilesGlob } from './lake-keys.ts';
import { maxListedCodes, releaseSort } from './lake-layout.ts';

/**
 * What each file of a release holds (its rows, codes and event dates), read back from the
 * files for the catalog, where the planner finds the files a query needs without opening any.
 * Ingest calls it after writing a release; so does anything else that publishes one (the
 * synthetic bench lake), so that the catalog's figures are made one way.
 */
export async function readReleaseFileStats(
  engine: Pick<IngestRunner, 'dialect' | 'rows'>,
  contract: Pick<DatasetContract, 'columns' | 'datePolicy'>,
  target: { store: ObjectStore; folder: string },
  files: readonly string[],
): Promise<ReleaseFileStats[]> {
  const { code, eventDate } = releaseSort(contract);
  const sql = engine.dialect;
  const quote = (name: string) => sql.quoteIdentifier(name);
  // One pass for every file's figures, one for the codes of those with few enough to list.
  const from = sql.parquetFilesNamed(releaseFilesGlob(target.store.locate(target.folder)));
  const dates = eventDate
    ? `${sql.castToText(`min(${quote(eventDate)})`)} AS first, ${sql.castToText(`max(${quote(eventDate)})`)} AS last`
    : 'NULL AS first, NULL AS last';
  const figures = await engine.rows<{
    file_name: string;
    n: bigint | number;
    codes: bigint | number;
    first: unknown;
    last: unknown;
  }>(
    `SELECT file_name, count(*) AS n, ${code ? `count(DISTINCT ${quote(code)})` : '0'} AS codes, ${dates}
      FROM ${from} GROUP BY file_name`,
  );
  const listed = figures.filter((row) => code && Number(row.codes) <= maxListedCodes);
  const codes = new Map<string, string[]>(listed.map((row) => [row.file_name, []]));
  if (code && listed.length > 0) {
    const pairs = await engine.rows<{ file_name: string; code: unknown }>(
      `SELECT DISTINCT file_name, ${sql.castToText(quote(code))} AS code FROM ${from}
        WHERE ${quote(code)} IS NOT NULL AND ${sql.isOneOf(
          'file_name',
          listed.map((row) => row.file_name),
        )}`,
    );
    for (const pair of pairs) codes.get(pair.file_name)?.push(String(pair.code));
  }
  const day = (value: unknown) => (typeof value === 'string' ? value.slice(0, 10) : null);
  const byName = new Map(figures.map((row) => [row.file_name, row]));
  return files.map((file) => {
    const row = byName.get(file);
    return {
      file,
      rows: Number(row?.n ?? 0),
      codes: codes.get(file)?.sort() ?? null,
      firstEvent: day(row?.first),
      lastEvent: day(row?.last),
    };
  });
}
