import { createHash } from 'node:crypto';
import { lakeColumns, type DatasetContract } from '@medlake/shared';
import {
  dictionaryFiguresRepository,
  type CodePatientsFigure,
  type CodeRowsFigure,
  type ScopeFigures,
  type SummedCode,
} from '../../catalog/dictionary-figures-repository.ts';
import { releasesRepository } from '../../catalog/releases-repository.ts';
import type { CatalogDb } from '../../catalog/catalog.ts';
import type { QueryEngine } from '../../engines/types.ts';
import { releaseFilesGlob, releaseFolder } from '../../ingest/lake-keys.ts';
import type { Platform } from '../../platform.ts';

/**
 * The data dictionary's counts are kept in the catalog per scope, counted when a release is
 * published (and, for releases published before, on the first request), so that a request
 * reads them instead of scanning the lake.
 *
 * Why a scope is a hospital: distinct patients do not add up over months (one patient has
 * results in many), so a scope's figures are counted over all its current releases at once.
 * They do add up over hospitals where the contract's id space is `hospital`: the vault gives
 * each (id space, patient id) its own random pseudonym and the pseudonym is its table's primary
 * key (vault/vault.ts), so no pseudonym is ever at two hospitals. Where hospitals share an id
 * space (`shared`, a regional MPI), the same patient has one pseudonym at every hospital; the
 * scope is then the whole dataset ('*'), and each code's patients are kept per set of
 * hospitals they have it at, so that a grant covering some hospitals counts each patient once.
 */
export const sharedScope = '*';

/** A release as the figures are counted over it. */
export type CountedRelease = { id: string; hospitalId: string; folder: string };

type Dataset = { id: string; contract: DatasetContract; contractVersion: number };

/** The scope a hospital's releases are counted in. */
export function scopeOf(contract: DatasetContract, hospitalId: string): string {
  return contract.patientIdSpace === 'shared' ? sharedScope : hospitalId;
}

/**
 * What a scope's figures were counted over: the dataset, its contract version (which decides
 * the code, label and unit columns) and the releases, in one hash.
 */
export function basisOf(dataset: Dataset, scope: string, releaseIds: readonly string[]): string {
  const ids = [...releaseIds].sort().join(',');
  return createHash('sha256')
    .update(`${dataset.id}|${dataset.contractVersion}|${scope}|${ids}`)
    .digest('hex');
}

/** The releases each scope is counted over now: its hospitals' current releases. */
async function currentReleasesOf(
  db: CatalogDb,
  dataset: Dataset,
  scopes: readonly string[],
): Promise<Map<string, CountedRelease[]>> {
  const shared = scopes.includes(sharedScope);
  const releases = await releasesRepository(db).locations(
    dataset.id,
    undefined,
    shared ? {} : { hospitals: scopes },
  );
  const byScope = new Map<string, CountedRelease[]>(scopes.map((scope) => [scope, []]));
  for (const release of releases) {
    byScope.get(scopeOf(dataset.contract, release.hospitalId))?.push({
      id: release.id,
      hospitalId: release.hospitalId,
      folder: releaseFolder({ ...release, releaseId: release.id }),
    });
  }
  return byScope;
}

/**
 * The figures of the scope a release being published belongs to, counted over the scope's
 * current releases with this one in place of its month's: for the publishing transaction to
 * store (`storeScopeFigures`). Undefined when counting fails: the figures are a derived copy,
 * so the release is published without them and its first dictionary request counts them.
 */
export async function countFiguresAtPublish(
  platform: Platform,
  dataset: Dataset,
  release: CountedRelease & { month: string },
): Promise<ScopeFigures | undefined> {
  const scope = scopeOf(dataset.contract, release.hospitalId);
  try {
    const current = await releasesRepository(platform.catalog.db).locations(
      dataset.id,
      undefined,
      scope === sharedScope ? {} : { hospitals: [release.hospitalId] },
    );
    const replaced = (other: { hospitalId: string; month: string }) =>
      other.hospitalId === release.hospitalId && other.month === release.month;
    const releases: CountedRelease[] = [
      ...current
        .filter((other) => !replaced(other))
        .map((other) => ({
          id: other.id,
          hospitalId: other.hospitalId,
          folder: releaseFolder({ ...other, releaseId: other.id }),
        })),
      release,
    ];
    return await countScope(platform, dataset, scope, releases);
  } catch {
    return undefined;
  }
}

/** Stores a scope's figures, in the caller's transaction (the release's publication). */
export async function storeScopeFigures(
  db: CatalogDb,
  datasetId: string,
  figures: ScopeFigures,
): Promise<void> {
  await dictionaryFiguresRepository(db).replace(datasetId, figures);
}

/**
 * Every code's rows and distinct patients over the current releases of the hospitals given
 * (null: all of the dataset's), and the distinct patients of all codes: read from the catalog.
 * A scope whose figures were counted over other releases than its current ones (a release
 * published since without figures, or before the catalog kept them) is counted first, over
 * the lake, and stored for the next request.
 */
export async function readDictionaryFigures(
  platform: Platform,
  dataset: Dataset,
  hospitals: readonly string[],
  granted: readonly string[] | null,
): Promise<{ codes: SummedCode[]; totalPatients: number }> {
  const scopes =
    dataset.contract.patientIdSpace === 'shared' ? [sharedScope] : [...new Set(hospitals)];
  // A round counts the scopes whose figures are missing or out of date, and reads again; a
  // third round is needed only when releases are published while it counts.
  for (let round = 0; ; round += 1) {
    // One snapshot for the releases, the bases and the sums, so that the sums are those of the
    // current releases seen.
    const read = await platform.catalog.db
      .transaction()
      .setIsolationLevel('repeatable read')
      .execute(async (trx) => {
        const releases = await currentReleasesOf(trx, dataset, scopes);
        const repository = dictionaryFiguresRepository(trx);
        const stored = await repository.bases(dataset.id, scopes);
        const stale = scopes.filter(
          (scope) =>
            stored.get(scope) !==
            basisOf(
              dataset,
              scope,
              (releases.get(scope) ?? []).map((release) => release.id),
            ),
        );
        if (stale.length > 0) return { stale, releases, sums: undefined };
        return { stale, releases, sums: await repository.sums(dataset.id, scopes, granted) };
      });
    if (read.sums) return read.sums;
    if (round === 2) {
      throw new Error('The dictionary figures kept changing while they were read');
    }
    for (const scope of read.stale) {
      const figures = await countScope(platform, dataset, scope, read.releases.get(scope) ?? []);
      await platform.catalog.db
        .transaction()
        .execute((trx) => storeScopeFigures(trx, dataset.id, figures));
    }
  }
}

/** Counts a scope's figures over the lake: two aggregates over its releases' files. */
async function countScope(
  platform: Platform,
  dataset: Dataset,
  scope: string,
  releases: readonly CountedRelease[],
): Promise<ScopeFigures> {
  const basis = basisOf(
    dataset,
    scope,
    releases.map((release) => release.id),
  );
  const lake = lakeColumns(dataset.contract);
  const code = lake.find((column) => column.role === 'code');
  if (!code || releases.length === 0) return { scope, basis, rows: [], patients: [] };
  const engine = platform.engine;
  const sql = engine.dialect;
  const quote = (name: string) => sql.quoteIdentifier(name);
  const label = lake.find((column) => column.role === 'code_label');
  const unit = lake.find((column) => column.role === 'unit');
  const from = sql.scanParquet(
    releases.map((release) => releaseFilesGlob(platform.store.locate(release.folder))),
  );
  const rows = await engine.rows({
    sql: `SELECT hospital, ${quote(code.name)} AS code, count(*) AS n,
      ${label ? `min(${quote(label.name)})` : 'NULL'} AS label,
      ${unit ? `min(${quote(unit.name)})` : 'NULL'} AS unit
      FROM ${from} GROUP BY hospital, ${quote(code.name)}`,
    params: [],
  });
  const hospitals = [...new Set(releases.map((release) => release.hospitalId))].sort();
  return {
    scope,
    basis,
    rows: rows.map((row): CodeRowsFigure => ({
      hospitalId: String(row.hospital),
      code: textOrNull(row.code),
      rows: Number(row.n),
      label: textOrNull(row.label),
      unit: textOrNull(row.unit),
    })),
    patients: await countPatients(engine, from, quote(code.name), hospitals),
  };
}

/**
 * Distinct patients per code and per set of hospitals they have the code at, and the same for
 * all codes together. A patient's set is a sum of one bit per hospital, in words of 50 bits
 * (exact as JavaScript numbers), so that the engine groups patients by set without lists.
 */
async function countPatients(
  engine: QueryEngine,
  from: string,
  code: string,
  hospitals: readonly string[],
): Promise<CodePatientsFigure[]> {
  const sql = engine.dialect;
  const words = Math.ceil(hospitals.length / bitsPerWord);
  const wordColumns = Array.from({ length: words }, (_, word) => `w${word}`);
  const wordSums = wordColumns.map((name, word) => {
    const cases = hospitals
      .slice(word * bitsPerWord, (word + 1) * bitsPerWord)
      .map(
        (_, bit) =>
          `WHEN ${sql.placeholder(word * bitsPerWord + bit + 1)} THEN CAST(${2 ** bit} AS BIGINT)`,
      );
    return `sum(CASE hospital ${cases.join(' ')} ELSE CAST(0 AS BIGINT) END) AS ${name}`;
  });
  // Per code (or over all codes, with no key): each patient's set of hospitals, then patients
  // per set.
  const signatures = (codeKey: boolean) => {
    const [inner, key] = codeKey ? [`${code} AS code, `, 'code, '] : ['', ''];
    return `
    SELECT ${key}${wordColumns.join(', ')}, count(*) AS patients FROM (
      SELECT ${key}patient, ${wordSums.join(', ')} FROM (
        SELECT DISTINCT ${inner}patient, hospital FROM ${from} WHERE patient IS NOT NULL
      ) AS pairs GROUP BY ${key}patient
    ) AS per_patient GROUP BY ${key}${wordColumns.join(', ')}`;
  };
  const setOf = (row: Record<string, unknown>) =>
    hospitals.filter((_, index) => {
      const word = Number(row[`w${Math.floor(index / bitsPerWord)}`]);
      return Math.floor(word / 2 ** (index % bitsPerWord)) % 2 === 1;
    });
  const params = [...hospitals];
  const [byCode, all] = [
    await engine.rows({ sql: signatures(true), params }),
    await engine.rows({ sql: signatures(false), params }),
  ];
  return [
    ...byCode.map((row) => ({
      allCodes: false,
      code: textOrNull(row.code),
      hospitals: setOf(row),
      patients: Number(row.patients),
    })),
    ...all.map((row) => ({
      allCodes: true,
      code: null,
      hospitals: setOf(row),
      patients: Number(row.patients),
    })),
  ];
}

const bitsPerWord = 50;

function textOrNull(value: unknown): string | null {
  return value === null || value === undefined ? null : String(value);
}
