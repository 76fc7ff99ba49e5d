import { readFile, rm } from 'node:fs/promises';
import path from 'node:path';
import { datasetsRepository } from '../catalog/datasets-repository.ts';
import { hospitalsRepository } from '../catalog/hospitals-repository.ts';
import type { Actor } from '../audit/audit-log.ts';
import { metaRepository } from '../catalog/meta-repository.ts';
import { demoHospital, generateExports } from '../demo/generate-exports.ts';
import type { Platform } from '../platform.ts';
import { ingestUpload } from './ingest-upload.ts';
import { addUser, createApiToken, grantDatasetAccess } from './manage-access.ts';
import { addHospital, saveDataset } from './manage-datasets.ts';

/** The demo data's uploads and accounts are made by medlake itself, as the log says. */
const demoActor: Actor = { userId: null, name: 'demo data', source: 'medlake' };

export const demoSize = { hospitals: 2, months: 3, rows: 3000 };

const labResultsContract = new URL('../../config/contracts/lab-results.json', import.meta.url);

/**
 * Fills an empty installation with a small synthetic data set, so that a newcomer's first
 * `npm start` has something to look at: the lab-results dataset, two hospitals and three
 * months of generated exports, ingested like any upload. Does nothing if any dataset exists.
 */
export async function loadDemoData(
  platform: Platform,
  onFile: (message: string) => void = () => undefined,
): Promise<DemoAccount | undefined> {
  const db = platform.catalog.db;
  if ((await datasetsRepository(db).list()).length > 0) return undefined;

  const contract = JSON.parse(await readFile(labResultsContract, 'utf8')) as unknown;
  const dataset = await saveDataset(platform, contract);
  for (let index = 0; index < demoSize.hospitals; index += 1) {
    const hospital = demoHospital(index);
    if (!(await hospitalsRepository(db).get(hospital.id)))
      await addHospital(platform, demoActor, hospital);
  }

  const directory = path.join(platform.layout.work, 'demo-exports');
  try {
    const exports = await generateExports({ ...demoSize, outDir: directory, dirtyShare: 0.002 });
    for (const file of exports) {
      const result = await ingestUpload(platform, {
        actor: demoActor,
        datasetId: dataset.id,
        hospitalId: file.hospital,
        month: file.month,
        fileName: path.basename(file.file),
        source: { file: file.file },
      });
      onFile(`demo data: ${path.basename(file.file)} ${result.status}`);
    }
  } finally {
    // The generated exports carry (fake) identifiers; they never stay on disk.
    await rm(directory, { recursive: true, force: true });
  }
  await metaRepository(db).set('demo_data', { loadedAt: new Date().toISOString(), ...demoSize });

  // Someone to try the query API as: aggregate access, like most researchers.
  const researcher = await addUser(platform, demoActor, {
    email: demoResearcher,
    name: 'Demo Researcher',
    role: 'researcher',
  });
  await grantDatasetAccess(platform, demoActor, {
    email: researcher.email,
    datasetId: dataset.id,
    level: 'aggregate',
  });
  const { token, expiresAt } = await createApiToken(platform, demoActor, {
    email: researcher.email,
    name: 'demo',
    days: 30,
  });
  return { email: researcher.email, token, expiresAt };
}

export const demoResearcher = 'researcher@demo.medlake.example';

export type DemoAccount = { email: string; token: string; expiresAt: Date };
