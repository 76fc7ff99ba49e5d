import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { labResultsIngestRequest } from '../../../test/ingest-helpers.ts';
import { generateExports } from '../../demo/generate-exports.ts';
import type { IngestRequest } from '../../ingest/ingest-types.ts';
import { createLocalObjectStore } from '../../storage/local/local-object-store.ts';
import { createDuckDbIngestEngine } from './duckdb-ingest.ts';

/**
 * While the vault works on a batch of patient ids, the ingest's engine runs a statement of its
 * own (the report's figures from the staged rows). A vault that fails there must fail the
 * ingest with the vault's own error, after the engine's statement has ended, and leave nothing
 * in the release's folder.
 */
describe('an ingest on DuckDB whose vault fails while the engine works', () => {
  let scratch: string;
  let csv: string;

  beforeAll(async () => {
    scratch = await mkdtemp(path.join(tmpdir(), 'medlake-vault-failure-'));
    const [generated] = await generateExports({
      hospitals: 1,
      months: 1,
      rows: 20_000,
      outDir: path.join(scratch, 'landing'),
      firstMonth: '2024-03',
    });
    csv = generated!.file;
  }, 60_000);

  afterAll(async () => {
    await rm(scratch, { recursive: true, force: true });
  });

  const request = (pseudonymizePatients: IngestRequest['pseudonymizePatients']) =>
    labResultsIngestRequest(csv, {
      month: '2024-03',
      target: {
        store: createLocalObjectStore(path.join(scratch, 'store')),
        folder: 'lake/release',
      },
      pseudonymizePatients,
    });

  const engine = () =>
    createDuckDbIngestEngine({
      allowedDirectories: [path.join(scratch, 'landing'), path.join(scratch, 'store')],
      tempDirectory: path.join(scratch, 'spill'),
      memoryLimit: '256MB',
    });

  it('fails with the vault error and writes no file', async () => {
    let batches = 0;
    const failing = await request(async () => {
      batches += 1;
      throw new Error('the vault is unavailable');
    });
    await expect(engine().ingest(failing)).rejects.toThrow('the vault is unavailable');
    expect(batches).toBe(1);
    const written = await readdir(path.join(scratch, 'store'), { recursive: true }).catch(() => []);
    expect(written.filter((name) => name.endsWith('.parquet'))).toEqual([]);
  });

  it('writes the release with the same vault answering', async () => {
    let next = 0;
    const answering = await request(async (ids) => {
      return new Map(ids.map((id) => [id, { pseudonym: `p_${(next += 1)}`, shiftDays: 0 }]));
    });
    const outcome = await engine().ingest(answering);
    expect(outcome.status).toBe('written');
    if (outcome.status !== 'written') return;
    // The figures the engine computed beside the vault are in the report.
    const { rows, rejectedRows, eventsOutsideMonth, rejectedByReason } = outcome.profile;
    expect(rows).toBeGreaterThan(19_000);
    expect(rows + rejectedRows).toBeLessThanOrEqual(20_000);
    expect(eventsOutsideMonth).toBe(0);
    expect(Object.values(rejectedByReason).reduce((a, b) => a + b, 0)).toBe(rejectedRows);
    expect(outcome.files.length).toBeGreaterThan(0);
  });
});
