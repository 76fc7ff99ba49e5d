// Child process of bench/ingest.ts: the parts of work that any ingest design must do for this
// file, each measured alone with nothing else running, beside DuckDB's own COPY. Their sum is a
// lower bound for medlake's ingest on this machine, to set against the target. Prints one JSON
// line of seconds.
import { createHash, randomBytes } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { DuckDBInstance } from '@duckdb/node-api';
import { datasetContractSchema } from '@medlake/shared';
import { duckTypes } from '../server/src/engines/duckdb/duckdb-ingest.ts';
import { quoteLiteral } from '../server/src/engines/duckdb/duckdb-sql.ts';
import { readHeader, resolveHeader } from '../server/src/ingest/ingest-plan.ts';
import { openVault } from '../server/src/vault/vault.ts';

const [csv] = process.argv.slice(2);
if (!csv) throw new Error('usage: ingest-floor.ts CSV');
const scratch = await mkdtemp(path.join(tmpdir(), 'medlake-bench-floor-'));
const seconds = async (work: () => Promise<unknown>) => {
  const started = performance.now();
  await work();
  return (performance.now() - started) / 1000;
};

try {
  const contractFile = new URL('../server/config/contracts/lab-results.json', import.meta.url);
  const contract = datasetContractSchema.parse(JSON.parse(await readFile(contractFile, 'utf8')));
  const header = await readHeader(createReadStream(csv), contract.delimiter);
  if (!('fields' in header)) throw new Error('the generated file has no header');
  const { source } = resolveHeader(header.fields, contract);
  const columns = source
    .map((s) => `${quoteLiteral(s.header)}: ${quoteLiteral(duckTypes[s.readAs])}`)
    .join(', ');
  // What reaches the lake: everything but the identifiers that are dropped.
  const kept = source
    .filter(
      (s) =>
        s.column &&
        (s.column.role !== 'direct_identifier' || s.column.action === 'pseudonymize') &&
        (s.column.role !== 'free_text' || s.column.allowed),
    )
    .map((s) => `"${s.header}"`);
  const patient = source.find((s) => s.column?.role === 'patient_id');
  if (!patient) throw new Error('the contract has no patient_id column');
  const typedCsv = `read_csv(${quoteLiteral(csv)}, header = true, auto_detect = false, columns = {${columns}})`;

  const instance = await DuckDBInstance.create(':memory:');
  const connection = await instance.connect();
  const parquet = quoteLiteral(path.join(scratch, 'out.parquet'));

  const contentHash = await seconds(async () => {
    const hash = createHash('sha256');
    for await (const chunk of createReadStream(csv, { highWaterMark: 4 << 20 })) {
      hash.update(chunk as Buffer);
    }
    hash.digest();
  });
  let ids: string[] = [];
  const distinctPatients = await seconds(async () => {
    const reader = await connection.runAndReadAll(
      `SELECT DISTINCT "${patient.header}" AS id FROM ${typedCsv}`,
    );
    ids = reader.getColumnsJS()[0] as string[];
  });
  const vault = openVault(path.join(scratch, 'vault'), randomBytes(32));
  const newPatients = await seconds(async () =>
    vault.pseudonymize({ space: 'hospital:h01', kind: 'patient' }, ids),
  );
  vault.close();
  const keptColumnsToParquet = await seconds(() =>
    connection.run(
      `COPY (SELECT ${kept.join(', ')} FROM ${typedCsv}) TO ${parquet} (FORMAT parquet)`,
    ),
  );
  const baseline = await seconds(() =>
    connection.run(
      `COPY (SELECT * FROM read_csv(${quoteLiteral(csv)})) TO ${parquet} (FORMAT parquet)`,
    ),
  );
  connection.closeSync();
  instance.closeSync();
  console.log(
    JSON.stringify({ baseline, contentHash, distinctPatients, newPatients, keptColumnsToParquet }),
  );
} finally {
  await rm(scratch, { recursive: true, force: true });
}
