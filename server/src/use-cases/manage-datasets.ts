import { datasetContractSchema, type DatasetContract } from '@medlake/shared';
import { datasetsRepository, type Dataset } from '../catalog/datasets-repository.ts';
import { hospitalsRepository, type Hospital } from '../catalog/hospitals-repository.ts';
import { AppError, notFound } from '../errors.ts';
import type { Actor } from '../audit/audit-log.ts';
import type { Platform } from '../platform.ts';
import { zodIssues } from '../validation.ts';

/** Checks a contract as written (a file, a request body) and names every problem by path. */
export function parseContract(input: unknown): DatasetContract {
  const parsed = datasetContractSchema.safeParse(input);
  if (!parsed.success) {
    throw new AppError(
      'contract_invalid',
      'The dataset contract is invalid',
      zodIssues(parsed.error, '(contract)'),
    );
  }
  return parsed.data;
}

/** Creates a dataset from its contract, or with `replace` gives an existing one a new version. */
export async function saveDataset(
  platform: Platform,
  input: unknown,
  options: { replace?: boolean } = {},
): Promise<Dataset> {
  const contract = parseContract(input);
  const datasets = datasetsRepository(platform.catalog.db);
  const existing = await datasets.get(contract.name);
  if (existing && !options.replace) {
    throw new AppError(
      'already_exists',
      `Dataset ${contract.name} exists; replace its contract explicitly to change it`,
    );
  }
  if (existing) return (await datasets.updateContract(contract)) ?? existing;
  return datasets.create(contract);
}

/**
 * Records a hospital's own header names for a dataset: { "their header": "column name" }.
 * Every target must be a column of the contract.
 */
export async function mapHospitalHeaders(
  platform: Platform,
  datasetId: string,
  hospitalId: string,
  mapping: Record<string, string>,
): Promise<void> {
  const dataset = await datasetsRepository(platform.catalog.db).get(datasetId);
  if (!dataset) throw notFound('dataset_not_found', `Dataset ${datasetId}`);
  if (!(await hospitalsRepository(platform.catalog.db).get(hospitalId)))
    throw notFound('hospital_not_found', `Hospital ${hospitalId}`);
  const names = new Set(dataset.contract.columns.map((column) => column.name));
  const unknown = Object.entries(mapping).filter(([, name]) => !names.has(name));
  if (unknown.length > 0) {
    throw new AppError(
      'contract_invalid',
      'The mapping names columns the contract does not have',
      unknown.map(([header, name]) => ({
        path: header,
        message: `${name} is not a column of ${datasetId}`,
      })),
    );
  }
  await datasetsRepository(platform.catalog.db).setHeaderMapping(datasetId, hospitalId, mapping);
}

const hospitalIdPattern = /^[a-z0-9][a-z0-9-]{0,31}$/;

/** Adds a hospital. Its id appears in lake paths, so it is a short lower-case slug. */
export async function addHospital(
  platform: Platform,
  actor: Actor,
  input: { id: string; name: string },
): Promise<Hospital> {
  if (!hospitalIdPattern.test(input.id)) {
    throw new AppError(
      'invalid_input',
      'A hospital id is 1 to 32 lower-case letters, digits and dashes',
    );
  }
  if (input.name.trim() === '') throw new AppError('invalid_input', 'A hospital needs a name');
  const hospitals = hospitalsRepository(platform.catalog.db);
  if (await hospitals.get(input.id))
    throw new AppError('already_exists', `Hospital ${input.id} exists`);
  return platform.catalog.db.transaction().execute(async (trx) => {
    const hospital = await hospitalsRepository(trx).create({
      id: input.id,
      name: input.name.trim(),
    });
    await platform.audit.record(
      {
        action: 'hospital.create',
        actor,
        target: `hospital:${input.id}`,
        details: { name: hospital.name },
      },
      trx,
    );
    return hospital;
  });
}
