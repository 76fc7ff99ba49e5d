import { createReadStream, existsSync } from 'node:fs';
import { readdir, readFile, stat } from 'node:fs/promises';
import path from 'node:path';
import { Readable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { datasetContractSchema } from '@medlake/shared';
import { readHeader, resolveHeader } from '../src/ingest/ingest-plan.ts';
import type { IngestRequest } from '../src/ingest/ingest-types.ts';
import type { Platform } from '../src/platform.ts';
import { testActor } from './helper.ts';
import { ingestUpload, type IngestResult } from '../src/use-cases/ingest-upload.ts';
import { addHospital, saveDataset } from '../src/use-cases/manage-datasets.ts';
import { assignSteward } from '../src/use-cases/accounts/manage-users.ts';
import { addUser, createApiToken } from '../src/use-cases/manage-access.ts';

export const repositoryRoot = fileURLToPath(new URL('../..', import.meta.url));

/**
 * The realistic hospital exports of ../shared/fixtures/synthea, beside the repository, or of
 * MEDLAKE_SYNTHEA_DIR for a clone that lives elsewhere.
 */
export function synthea(name: '2020-12' | '2021-03' | '2021-04' | 'all'): string {
  const fixtures =
    process.env.MEDLAKE_SYNTHEA_DIR ??
    path.join(repositoryRoot, '..', 'shared', 'fixtures', 'synthea');
  const file = path.join(fixtures, `hospital-export-${name}.csv`);
  if (!existsSync(file)) {
    throw new Error(
      `The Synthea fixture ${file} is missing: the tests expect shared/ beside the repository, ` +
        'or MEDLAKE_SYNTHEA_DIR naming the folder that holds the fixture.',
    );
  }
  return file;
}

export const contractFile = (name: 'synthea-observations' | 'lab-results') =>
  path.join(repositoryRoot, 'server', 'config', 'contracts', `${name}.json`);

/**
 * What an ingest engine is asked to do with a lab-results export (generateExports) of hospital
 * h01 for `month`: the shipped contract, the file's own header, 128 MB files.
 */
export async function labResultsIngestRequest(
  csv: string,
  options: Pick<IngestRequest, 'target' | 'pseudonymizePatients' | 'pseudonymBatch'> & {
    month: string;
    idSpace?: string;
  },
): Promise<IngestRequest> {
  const contract = datasetContractSchema.parse(
    JSON.parse(await readFile(contractFile('lab-results'), 'utf8')),
  );
  const header = await readHeader(createReadStream(csv), contract.delimiter);
  if (!('fields' in header)) throw new Error('the generated export has no header');
  return {
    plan: {
      contract,
      hospitalId: 'h01',
      month: options.month,
      fileName: path.basename(csv),
      source: resolveHeader(header.fields, contract).source,
      restrictedZip3: [],
    },
    source: csv,
    sourceBytes: (await stat(csv)).size,
    openSource: async () => createReadStream(csv),
    target: options.target,
    fileBytes: 128 * 2 ** 20,
    pseudonymizePatients: options.pseudonymizePatients,
    ...(options.pseudonymBatch ? { pseudonymBatch: options.pseudonymBatch } : {}),
    linkageKey: 'a'.repeat(64),
    idSpace: options.idSpace ?? 'hospital:h01',
    maxReportedProblems: 10,
  };
}

/** Adds the `synthea` hospital and the dataset of the given contract. */
export async function prepareDataset(
  platform: Platform,
  contract: 'synthea-observations' | 'lab-results',
  hospitalIds: string[] = ['synthea'],
): Promise<void> {
  for (const id of hospitalIds)
    await addHospital(platform, testActor, { id, name: `Hospital ${id}` });
  await saveDataset(platform, JSON.parse(await readFile(contractFile(contract), 'utf8')));
}

/** The header of a hospital export in Synthea's layout, which synthea-observations reads. */
export const syntheaHeader =
  'MRN,SSN,FIRST,LAST,BIRTHDATE,DEATHDATE,GENDER,RACE,ETHNICITY,ADDRESS,CITY,STATE,ZIP,DATE,ENCOUNTER,CATEGORY,CODE,DESCRIPTION,VALUE,UNITS,TYPE';

/**
 * One numeric result in Synthea's layout for a made-up patient, observed at 08:00 UTC on `date`.
 * Every row carries the same fake SSN pattern, name, birth date and street, none of which may
 * reach the lake.
 */
export function syntheaRow(row: {
  patient: string;
  index: number;
  city: string;
  zip: string;
  date: string;
  category: string;
  code: string;
  description: string;
  value: number;
  unit: string;
}): string {
  const ssn = `999-00-${String(row.index).padStart(4, '0')}`;
  const person = [ssn, 'Alexis', 'Testperson', '1970-05-05', '', 'F', 'white', 'nonhispanic'];
  const address = ['1 Main Street', row.city, 'Massachusetts', row.zip];
  const observed = [`${row.date}T08:00:00Z`, `${row.patient}-encounter`, row.category];
  const result = [row.code, row.description, String(row.value), row.unit, 'numeric'];
  return [row.patient, ...person, ...address, ...observed, ...result].join(',');
}

/** The Synthea dataset with its export of December 2020 published: where many suites start. */
export async function publishSyntheaDecember(platform: Platform): Promise<void> {
  await prepareDataset(platform, 'synthea-observations');
  const { status } = await ingest(platform, { file: synthea('2020-12'), month: '2020-12' });
  if (status !== 'published') throw new Error(`December 2020 ended ${status}, not published`);
}

/** Ingests a file, or CSV text given inline. */
export async function ingest(
  platform: Platform,
  input: {
    file?: string;
    text?: string | Buffer;
    dataset?: string;
    hospital?: string;
    month: string;
  },
): Promise<IngestResult> {
  const text = typeof input.text === 'string' ? Buffer.from(input.text) : input.text;
  const source = input.file
    ? { file: input.file }
    : { stream: Readable.from([text ?? Buffer.alloc(0)]) };
  return ingestUpload(platform, {
    actor: { userId: null, name: 'test', source: 'test' },
    datasetId: input.dataset ?? 'synthea-observations',
    hospitalId: input.hospital ?? 'synthea',
    month: input.month,
    fileName: input.file ? path.basename(input.file) : 'upload.csv',
    source,
  });
}

/**
 * The `locked` dataset of the airlock's tests: the Synthea contract with an airlock, under its
 * own name, and all of Synthea's export published as one month of it.
 */
export async function publishLockedDataset(platform: Platform): Promise<void> {
  await addHospital(platform, testActor, { id: 'synthea', name: 'Synthea' });
  const contract = JSON.parse(await readFile(contractFile('synthea-observations'), 'utf8'));
  await saveDataset(platform, {
    ...contract,
    name: 'locked',
    title: 'Locked',
    privacy: { airlock: true },
  });
  const { status } = await ingest(platform, {
    file: synthea('all'),
    dataset: 'locked',
    month: '2021-06',
  });
  if (status !== 'published') throw new Error(`the locked dataset's ingest ended ${status}`);
}

/** Every file under a directory, recursively, as absolute paths. */
export async function listFiles(directory: string): Promise<string[]> {
  try {
    const entries = await readdir(directory, { recursive: true, withFileTypes: true });
    return entries
      .filter((entry) => entry.isFile())
      .map((entry) => path.join(entry.parentPath, entry.name));
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw error;
  }
}

/** Splits a fixture into its header and data lines, to build malformed variants from. */
export async function fixtureLines(
  name: '2020-12' | '2021-03',
): Promise<{ header: string; rows: string[] }> {
  const [header = '', ...rows] = (await readFile(synthea(name), 'utf8'))
    .split('\n')
    .filter((line) => line !== '');
  return { header, rows };
}

/**
 * One month of `hospital-export-all.csv` as its own export. The two monthly fixture files
 * share no patient, so linkage across months is tested on months of the full export that do.
 */
export async function monthOfFullExport(month: string): Promise<string> {
  const [header = '', ...rows] = (await readFile(synthea('all'), 'utf8'))
    .split('\n')
    .filter((line) => line !== '');
  const dateColumn = header.split(',').indexOf('DATE');
  // The fixture quotes no field before DATE, so a plain split finds it.
  const inMonth = rows.filter((row) => row.split(',')[dateColumn]?.startsWith(month));
  return [header, ...inMonth].join('\n');
}

/** A steward of the hospital, with an API token for a day; returns the token. */
export async function stewardWithToken(
  platform: Platform,
  email: string,
  hospitalId: string,
): Promise<string> {
  await addUser(platform, testActor, { email, name: email.split('@')[0]!, role: 'steward' });
  await assignSteward(platform, testActor, { email, hospitalId, assigned: true });
  return (await createApiToken(platform, testActor, { email, name: 'test', days: 1 })).token;
}
