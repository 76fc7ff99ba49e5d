import { datasetContractSchema, type DatasetContract } from '@medlake/shared';
import type { Selectable } from 'kysely';
import type { CatalogDb } from './catalog.ts';
import { heldBy, toGrant, type Grant } from './grants-repository.ts';
import type { DatasetsTable } from './schema.ts';

export type Dataset = {
  id: string;
  title: string;
  description: string;
  contract: DatasetContract;
  contractVersion: number;
  createdAt: Date;
  updatedAt: Date;
};

type DatasetRow = Selectable<DatasetsTable>;

/**
 * Contracts as parsed, by dataset, version and time of change: every query reads its dataset,
 * and parsing the whole contract each time cost more than the read. A contract is only ever
 * replaced through `updateContract`, which moves both.
 */
const parsedContracts = new Map<string, DatasetContract>();
const parsedContractsKept = 100;

function contractOf(row: DatasetRow): DatasetContract {
  const key = `${row.id}\u0000${row.contract_version}\u0000${row.updated_at.getTime()}`;
  const known = parsedContracts.get(key);
  if (known) return known;
  // Parsed on the way out too, so a contract that a newer release of medlake reads
  // differently fails loudly instead of being misread.
  const contract = datasetContractSchema.parse(row.contract);
  if (parsedContracts.size >= parsedContractsKept) parsedContracts.clear();
  parsedContracts.set(key, contract);
  return contract;
}

function toDataset(row: DatasetRow): Dataset {
  return {
    id: row.id,
    title: row.title,
    description: row.description,
    contract: contractOf(row),
    contractVersion: row.contract_version,
    createdAt: row.created_at,
    updatedAt: row.updated_at,
  };
}

/** Datasets and their contracts, and each hospital's header mapping for them. */
export function datasetsRepository(db: CatalogDb) {
  /** The dataset and the user's grants on it not revoked, and when `now` is given in force then. */
  const withGrants = async (
    id: string,
    userId: string,
    now: Date | undefined,
  ): Promise<{ dataset: Dataset; grants: Grant[] } | undefined> => {
    const rows = await db
      .selectFrom('datasets')
      .leftJoin('dataset_grants', (join) => {
        const unrevoked = join
          .onRef('dataset_grants.dataset_id', '=', 'datasets.id')
          .on('dataset_grants.revoked_at', 'is', null)
          .on(heldBy(userId));
        return now === undefined
          ? unrevoked
          : unrevoked.on((eb) =>
              eb.or([
                eb('dataset_grants.expires_at', 'is', null),
                eb('dataset_grants.expires_at', '>', now),
              ]),
            );
      })
      .selectAll('datasets')
      .select([
        'dataset_grants.id as grant_id',
        'dataset_grants.dataset_id as grant_dataset_id',
        'dataset_grants.user_id as grant_user_id',
        'dataset_grants.project_id as grant_project_id',
        'dataset_grants.level as grant_level',
        'dataset_grants.hospitals as grant_hospitals',
        'dataset_grants.expires_at as grant_expires_at',
        'dataset_grants.created_at as grant_created_at',
        'dataset_grants.revoked_at as grant_revoked_at',
      ])
      .where('datasets.id', '=', id)
      .execute();
    const [first] = rows;
    if (!first) return undefined;
    const grants = rows.flatMap((row) =>
      row.grant_id === null
        ? []
        : [
            toGrant({
              id: row.grant_id,
              dataset_id: row.grant_dataset_id!,
              user_id: row.grant_user_id,
              project_id: row.grant_project_id,
              level: row.grant_level!,
              hospitals: row.grant_hospitals,
              expires_at: row.grant_expires_at,
              created_at: row.grant_created_at!,
              revoked_at: row.grant_revoked_at,
            }),
          ],
    );
    return { dataset: toDataset(first), grants };
  };

  return {
    async create(contract: DatasetContract): Promise<Dataset> {
      const row = await db
        .insertInto('datasets')
        .values({
          id: contract.name,
          title: contract.title,
          description: contract.description,
          contract: JSON.stringify(contract),
        })
        .returningAll()
        .executeTakeFirstOrThrow();
      return toDataset(row);
    },

    /** Replaces the contract; releases keep the version they were ingested under. */
    async updateContract(contract: DatasetContract): Promise<Dataset | undefined> {
      const row = await db
        .updateTable('datasets')
        .set((eb) => ({
          title: contract.title,
          description: contract.description,
          contract: JSON.stringify(contract),
          contract_version: eb('contract_version', '+', 1),
          updated_at: new Date(),
        }))
        .where('id', '=', contract.name)
        .returningAll()
        .executeTakeFirst();
      return row && toDataset(row);
    },

    async get(id: string): Promise<Dataset | undefined> {
      const row = await db
        .selectFrom('datasets')
        .selectAll()
        .where('id', '=', id)
        .executeTakeFirst();
      return row && toDataset(row);
    },

    /**
     * The dataset and the grants the user holds on it at `now` (as grantsRepository.active
     * reads them), in one statement: what every query checks before it starts.
     */
    getWithActiveGrants(
      id: string,
      userId: string,
      now: Date,
    ): Promise<{ dataset: Dataset; grants: Grant[] } | undefined> {
      return withGrants(id, userId, now);
    },

    /**
     * The dataset and the grants the user holds on it that are not revoked, expired or not: a
     * fact held in memory, whose grants' expiry is checked against the clock at each use.
     */
    getWithUnrevokedGrants(
      id: string,
      userId: string,
    ): Promise<{ dataset: Dataset; grants: Grant[] } | undefined> {
      return withGrants(id, userId, undefined);
    },

    async list(): Promise<Dataset[]> {
      const rows = await db.selectFrom('datasets').selectAll().orderBy('id').execute();
      return rows.map(toDataset);
    },

    async headerMapping(datasetId: string, hospitalId: string): Promise<Record<string, string>> {
      const row = await db
        .selectFrom('header_mappings')
        .select('mapping')
        .where('dataset_id', '=', datasetId)
        .where('hospital_id', '=', hospitalId)
        .executeTakeFirst();
      return row?.mapping ?? {};
    },

    async setHeaderMapping(
      datasetId: string,
      hospitalId: string,
      mapping: Record<string, string>,
    ): Promise<void> {
      const json = JSON.stringify(mapping);
      await db
        .insertInto('header_mappings')
        .values({ dataset_id: datasetId, hospital_id: hospitalId, mapping: json })
        .onConflict((conflict) =>
          conflict
            .columns(['dataset_id', 'hospital_id'])
            .doUpdateSet({ mapping: json, updated_at: new Date() }),
        )
        .execute();
    },
  };
}
