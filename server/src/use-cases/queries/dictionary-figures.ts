import { createHash } from 'node:crypto';
import { lakeColumns, type DatasetContract } from '@medlake/shared';
import {
  dictionaryFiguresRepository,
  type CodePatientsFigure,
  type CodeRowsFigure,
  type ScopeFigures,
  type SummedCode,
} from '../../catalog/dictionary-figures-repository.ts';
import { dictionaryPairsRepository } from '../../catalog/dictionary-pairs-repository.ts';
import { releasesRepository } from '../../catalog/releases-repository.ts';
import type { CatalogDb } from '../../catalog/catalog.ts';
import type { QueryEngine } from '../../engines/types.ts';
import { releaseFolder } from '../../ingest/lake-keys.ts';
import { dictionaryPairsKey } from '../../ingest/release-pairs.ts';
import type { Platform } from '../../platform.ts';
import { pairsSource, writeDictionaryPairs, type PairsSource } from './dictionary-pairs.ts';

/**
 * The data dictionary's counts are kept in the catalog per scope, counted when a release is
 * published (and, for releases published before, on the first request), so that a request
 * reads them instead of scanning the lake. The count itself reads each release's pairs file
 * (dictionary-pairs.ts), written once per release, rather than the rows of every month again.
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

/**
 * A scope's figures as counted, with the releases whose pairs files the count wrote: they are
 * recorded as written where the figures are stored, in the same transaction.
 */
export type CountedFigures = ScopeFigures & {
  pairsWritten: string[];
  /** The contract version the pairs were written under; absent when none were written. */
  contractVersion?: number;
};

/**
 * A release as the figures are counted over it; `pairsInPlace`: its pairs file is written but
 * not yet recorded (a release being published, whose ingest wrote it).
 */
export type CountedRelease = {
  id: string;
  hospitalId: string;
  folder: string;
  /** The number of files the catalog lists for the release (absent: its folder's files). */
  fileCount?: number;
  pairsInPlace?: boolean;
};

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
      fileCount: release.fileCount,
    });
  }
  return byScope;
}

/**
 * The figures of the scope a release being published belongs to, counted over the scope's
 * current releases with this one in place of its month's (the replaced release's pairs are not
 * read): for the publishing transaction to store (`storeScopeFigures`). The new release's pairs
 * file is written here, into its folder, so that a failed publish removes it with the rest.
 * Undefined when counting fails: the figures are a derived copy, so the release is published
 * without them and its first dictionary request counts them (writing its pairs then).
 */
export async function countFiguresAtPublish(
  platform: Platform,
  dataset: Dataset,
  release: CountedRelease & { month: string },
): Promise<CountedFigures | undefined> {
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
          fileCount: other.fileCount,
        })),
      release,
    ];
    return await countScope(platform, dataset, scope, releases);
  } catch {
    return undefined;
  }
}

/**
 * Stores a scope's figures, and records the pairs files their count wrote, in the caller's
 * transaction (the release's publication).
 */
export async function storeScopeFigures(
  db: CatalogDb,
  datasetId: string,
  figures: CountedFigures,
): Promise<void> {
  const { pairsWritten, contractVersion, ...stored } = figures;
  if (contractVersion !== undefined) {
    await dictionaryPairsRepository(db).record(pairsWritten, contractVersion);
  }
  await dictionaryFiguresRepository(db).replace(datasetId, stored);
}

/**
 * Every code's rows and distinct patients over the current releases of the hospitals given
 * (null: all of the dataset's), and the distinct patients of all codes: read from the catalog.
 * A scope whose figures were counted over other releases than its current ones (a release
 * published since without figures, or before the catalog kept them) is counted first, from
 * its releases' pairs files (writing those it lacks), and stored for the next request.
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

/**
 * Counts a scope's figures from its releases' pairs files (dictionary-pairs.ts), first writing
 * those of releases that have none yet under the dataset's contract version: at a publish, the
 * new release's (one month's rows); after an upgrade or a contract change, every release's once.
 * The pairs written here are recorded with the figures, in the transaction that stores them.
 */
async function countScope(
  platform: Platform,
  dataset: Dataset,
  scope: string,
  releases: readonly CountedRelease[],
): Promise<CountedFigures> {
  const basis = basisOf(
    dataset,
    scope,
    releases.map((release) => release.id),
  );
  const engine = platform.engine;
  const hasCodes = lakeColumns(dataset.contract).some((column) => column.role === 'code');
  if (releases.length === 0 || !hasCodes) {
    return { scope, basis, rows: [], patients: [], pairsWritten: [] };
  }
  const written = await dictionaryPairsRepository(platform.catalog.db).written(
    releases.map((release) => release.id),
    dataset.contractVersion,
  );
  let toWrite = releases.filter((release) => !written.has(release.id));
  const writePairs = async (again: boolean) => {
    for (const release of toWrite) {
      if (release.pairsInPlace && !again) continue;
      await writeDictionaryPairs(engine, platform.store, dataset.contract, release);
    }
  };
  await writePairs(false);
  const source = pairsSource(
    engine,
    releases.map((release) => platform.store.locate(dictionaryPairsKey(release.folder))),
  );
  const hospitals = [...new Set(releases.map((release) => release.hospitalId))].sort();
  // Both engines read the pairs files by name and fail the count when one is not there, so a
  // lost file is never a silent undercount.
  const count = () => countFigures(engine, { scope, basis, hospitals }, source);
  // Whether a pairs file was read that this count did not write itself.
  const readsOthers = written.size > 0 || releases.some((release) => release.pairsInPlace);
  let counted = await count().catch((error: unknown) => {
    if (!readsOthers) throw error;
    return undefined;
  });
  if (!counted) {
    // A recorded pairs file that cannot be read (lost, say, with a partial copy of the lake):
    // every release's is written again from its rows, once, and counted as it then is.
    toWrite = [...releases];
    await writePairs(true);
    counted = await count();
  }
  return {
    ...counted,
    pairsWritten: toWrite.map((release) => release.id),
    contractVersion: dataset.contractVersion,
  };
}

/**
 * A scope's figures over a source of rows or pairs: rows, label and unit per hospital and code,
 * and distinct patients per code and set of hospitals. Exported for bench:dictionary, which
 * times the same count over the releases' rows (what a publish read before the pairs files).
 */
export async function countFigures(
  engine: QueryEngine,
  of: { scope: string; basis: string; hospitals: readonly string[] },
  source: PairsSource,
): Promise<ScopeFigures> {
  const rows = await engine.rows({
    sql: `SELECT hospital, ${source.code} AS code, ${source.rowCount} AS n,
      min(${source.label}) AS label, min(${source.unit}) AS unit
      FROM ${source.from} GROUP BY hospital, ${source.code}`,
    params: [],
  });
  return {
    scope: of.scope,
    basis: of.basis,
    rows: rows.map((row): CodeRowsFigure => ({
      hospitalId: String(row.hospital),
      code: textOrNull(row.code),
      rows: Number(row.n),
      label: textOrNull(row.label),
      unit: textOrNull(row.unit),
    })),
    patients: await countPatients(engine, source.from, source.code, of.hospitals),
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
  const [only] = hospitals;
  if (hospitals.length === 1 && only !== undefined) {
    // One hospital, every patient's set: each code's patients (and all codes') are counted
    // directly, one aggregate where the sets take three (the 1 GB month's 2.95 million pairs:
    // 0.9-1.3 s of CPU against 2.1-2.7 s per code, three rounds at load 8).
    const patients = (key: string) =>
      engine.rows({
        sql: `SELECT ${key}count(DISTINCT patient) AS patients FROM ${from}
          WHERE patient IS NOT NULL ${key ? `GROUP BY ${code}` : 'HAVING count(DISTINCT patient) > 0'}`,
        params: [],
      });
    return [
      ...(await patients(`${code} AS code, `)).map((row) => ({
        allCodes: false,
        code: textOrNull(row.code),
        hospitals: [only],
        patients: Number(row.patients),
      })),
      ...(await patients('')).map((row) => ({
        allCodes: true,
        code: null,
        hospitals: [only],
        patients: Number(row.patients),
      })),
    ];
  }
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
