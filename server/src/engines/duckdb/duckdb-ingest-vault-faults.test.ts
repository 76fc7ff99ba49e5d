import { randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { parse } from 'csv-parse/sync';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { labResultsIngestRequest, listFiles } from '../../../test/ingest-helpers.ts';
import { readParquet } from '../../../test/parquet.ts';
import { generateExports } from '../../demo/generate-exports.ts';
import type { IngestOutcome, IngestRequest } from '../../ingest/ingest-types.ts';
import { createLocalObjectStore } from '../../storage/local/local-object-store.ts';
import { openVault, type Vault } from '../../vault/vault.ts';
import { createDuckDbIngestEngine } from './duckdb-ingest.ts';

/** The headers of the export's columns that identify a patient: none may leave the ingest. */
const identifierColumns = [
  'patient_mrn',
  'ssn',
  'first_name',
  'last_name',
  'street_address',
  'phone',
  'email',
  'encounter_id',
] as const;

const scope = { space: 'hospital:h01', kind: 'patient' };
/** A few ids a batch, so that the upload's 250 patients go to the vault in three batches. */
const batch = 100;

/**
 * The two ways an ingest on DuckDB can fail while the vault works on a batch of patient ids,
 * since the engine's statements that need no pseudonyms run beside it: the engine's statement
 * fails (the vault answering after it, as a vault service does), or the vault fails on a later
 * batch, after an earlier one was stored. Each time the real vault, on its own directory, is the
 * one the ingest uses; nothing may be written, no identifier may be in the error, and the same
 * upload must then ingest to exactly what a clean run on the same vault gives.
 */
describe('an ingest on DuckDB that fails part way through the vault batches', () => {
  let scratch: string;
  let csv: string;
  let records: Array<Record<string, string>>;
  let identifiers: string[];
  let patients: string[];
  const unhandled: unknown[] = [];
  const onUnhandled = (reason: unknown) => void unhandled.push(reason);

  beforeAll(async () => {
    scratch = await mkdtemp(path.join(tmpdir(), 'medlake-vault-faults-'));
    const [generated] = await generateExports({
      hospitals: 1,
      months: 1,
      rows: 3_000,
      outDir: path.join(scratch, 'landing'),
      firstMonth: '2025-01',
    });
    csv = generated!.file;
    records = parse(await readFile(csv), { columns: true }) as Array<Record<string, string>>;
    patients = [...new Set(records.map((record) => record.patient_mrn ?? ''))].filter(Boolean);
    identifiers = [
      ...new Set(
        records.flatMap((record) =>
          identifierColumns.map((column) => record[column] ?? '').filter((v) => v.length >= 4),
        ),
      ),
    ];
  }, 60_000);

  afterAll(async () => {
    await rm(scratch, { recursive: true, force: true });
  });

  beforeEach(() => {
    unhandled.length = 0;
    process.on('unhandledRejection', onUnhandled);
  });

  afterEach(() => {
    process.off('unhandledRejection', onUnhandled);
  });

  let runs = 0;
  /** One ingest of the upload into a release folder of its own, asking `lookup` for pseudonyms. */
  async function ingest(
    lookup: IngestRequest['pseudonymizePatients'],
    month = '2025-01',
  ): Promise<{ outcome: Promise<IngestOutcome>; folder: string; spill: string }> {
    runs += 1;
    const folder = `lake/run-${runs}`;
    const spill = path.join(scratch, `spill-${runs}`);
    const engine = createDuckDbIngestEngine({
      allowedDirectories: [path.join(scratch, 'landing'), path.join(scratch, 'store')],
      tempDirectory: spill,
      memoryLimit: '256MB',
    });
    const outcome = engine.ingest(
      await labResultsIngestRequest(csv, {
        month,
        target: { store: store(), folder },
        pseudonymizePatients: lookup,
        pseudonymBatch: batch,
        idSpace: scope.space,
      }),
    );
    return { outcome, folder, spill };
  }

  const store = () => createLocalObjectStore(path.join(scratch, 'store'));
  const newVault = (name: string) => openVault(path.join(scratch, name), randomBytes(32));

  /** The patient pseudonyms a vault holds, counted one by one. */
  const identitiesIn = (vault: Vault) => {
    let count = 0;
    vault.findPatientPseudonym(() => {
      count += 1;
      return false;
    });
    return count;
  };

  /** A failed ingest: its error tells no identifier, and it left no file anywhere. */
  async function expectNothingLeft(error: unknown, run: { folder: string; spill: string }) {
    expect(error).toBeInstanceOf(Error);
    const told = `${String(error)}\n${(error as Error).stack ?? ''}\n${JSON.stringify(error)}`;
    expect(identifiers.filter((identifier) => told.includes(identifier))).toEqual([]);
    expect(await listFiles(store().locate(run.folder))).toEqual([]);
    // Nothing the engine spilled (staged rows, real ids) outlives its instance.
    expect(await listFiles(run.spill)).toEqual([]);
  }

  /** The release's rows, in a stable order. */
  async function rowsOf(outcome: IngestOutcome, folder: string) {
    expect(outcome.status).toBe('written');
    if (outcome.status !== 'written') return [];
    const files = outcome.files.map((name) => store().locate(`${folder}/${name}`));
    const rows = await readParquet(files);
    const key = (row: Record<string, unknown>) =>
      JSON.stringify(row, (_name, value: unknown) =>
        typeof value === 'bigint' ? value.toString() : value,
      );
    return rows.map(key).sort();
  }

  /**
   * After the fault: the same upload, with the vault answering, ingests whole; a second clean
   * run on the same vault gives the very same rows (pseudonyms and shifted dates alike), and a
   * clean run on a vault that never saw a fault gives the same rows patient for patient. The
   * vault holds one identity per patient of the upload, nothing more.
   */
  async function expectRecovered(vault: Vault) {
    const lookup: IngestRequest['pseudonymizePatients'] = async (ids) =>
      vault.pseudonymize(scope, ids);
    const retry = await ingest(lookup);
    const retried = await retry.outcome;
    const again = await ingest(lookup);
    const retriedRows = await rowsOf(retried, retry.folder);
    expect(retriedRows.length).toBeGreaterThan(2_500);
    expect(await rowsOf(await again.outcome, again.folder)).toEqual(retriedRows);
    expect(identitiesIn(vault)).toBe(patients.length);

    const clean = newVault(`vault-clean-${runs}`);
    try {
      const oracle = await ingest(async (ids) => clean.pseudonymize(scope, ids));
      const oracleOutcome = await oracle.outcome;
      expect(oracleOutcome.status).toBe('written');
      if (oracleOutcome.status !== 'written' || retried.status !== 'written') return;
      // The report's figures (its means aside, summed in whatever order DuckDB's threads take).
      const figures = ({ profile }: typeof retried) => ({
        ...profile,
        codes: profile.codes.map(({ code, count, numericCount, median }) => ({
          code,
          count,
          numericCount,
          median,
        })),
      });
      expect(figures(retried)).toEqual(figures(oracleOutcome));
      // Each pseudonym back to its patient, through the vault that gave it.
      const realOf = (from: Vault) =>
        new Map([...from.pseudonymize(scope, patients)].map(([real, e]) => [e.pseudonym, real]));
      const patientRows = async (outcome: IngestOutcome, folder: string, from: Vault) => {
        const real = realOf(from);
        if (outcome.status !== 'written') return [];
        const rows = await readParquet(
          outcome.files.map((name) => store().locate(`${folder}/${name}`)),
        );
        return rows
          .map((row) => `${real.get(String(row.patient)) ?? 'unknown'}|${String(row.code)}`)
          .sort();
      };
      const recovered = await patientRows(retried, retry.folder, vault);
      expect(recovered).not.toContainEqual(expect.stringMatching(/^unknown/));
      expect(recovered).toEqual(await patientRows(oracleOutcome, oracle.folder, clean));
      expect(identitiesIn(vault)).toBe(identitiesIn(clean));
    } finally {
      clean.close();
    }
  }

  it("fails with the engine's error when a statement beside the vault fails, and the upload then ingests whole", async () => {
    const vault = newVault('vault-engine-fault');
    try {
      let batches = 0;
      // The vault answers as a vault service does, some time after the ingest asked: by then
      // the engine's statement beside it has failed. A month that does not exist fails the one
      // that counts the rows dated outside the month, a DuckDB error: real, and beside batch 2.
      const failing = await ingest(async (ids) => {
        batches += 1;
        for (let wait = 0; wait < 50 && unhandled.length === 0; wait += 1) {
          await new Promise((resolve) => setTimeout(resolve, 10));
        }
        return vault.pseudonymize(scope, ids);
      }, '2024-13');
      const error = await failing.outcome.then(
        () => undefined,
        (caught: unknown) => caught,
      );
      expect(unhandled).toEqual([]);
      expect(String(error)).toMatch(/2024-13-01/);
      expect(batches).toBeGreaterThanOrEqual(1);
      expect(batches).toBeLessThan(3);
      await expectNothingLeft(error, failing);
      // What the vault stored of the batches it answered stays, and serves the retry.
      expect(identitiesIn(vault)).toBe(batch * batches);
      await expectRecovered(vault);
    } finally {
      vault.close();
    }
  }, 120_000);

  it("fails with the vault's error when the vault fails after a first batch, and the upload then ingests whole", async () => {
    const vault = newVault('vault-between-batches');
    try {
      let batches = 0;
      // The second batch is stored, but its answer is lost on the way back: the vault holds
      // pseudonyms the ingest never received.
      const failing = await ingest(async (ids) => {
        batches += 1;
        const entries = vault.pseudonymize(scope, ids);
        if (batches === 2) throw new Error('the vault service went away');
        return entries;
      });
      const error = await failing.outcome.then(
        () => undefined,
        (caught: unknown) => caught,
      );
      expect(String(error)).toMatch(/the vault service went away/);
      expect(batches).toBe(2);
      expect(unhandled).toEqual([]);
      await expectNothingLeft(error, failing);
      expect(identitiesIn(vault)).toBe(2 * batch);
      await expectRecovered(vault);
    } finally {
      vault.close();
    }
  }, 120_000);
});
