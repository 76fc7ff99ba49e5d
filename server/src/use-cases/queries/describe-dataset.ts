import {
  assessDeidentification,
  lakeColumns,
  querySpecSchema,
  releaseLedgerOn,
  type DatasetContract,
  type DatasetListing,
  type DeidentificationAssessment,
} from '@medlake/shared';
import { datasetsRepository } from '../../catalog/datasets-repository.ts';
import { grantsRepository } from '../../catalog/grants-repository.ts';
import type { User } from '../../catalog/users-repository.ts';
import { notFound } from '../../errors.ts';
import type { Platform } from '../../platform.ts';
import { datasetAccess, type DatasetAccess } from '../../policy.ts';
import { compileQuery } from '../../query/compile-query.ts';
import { applyDisclosureControl, type DisclosureRule } from '../../query/disclosure.ts';
import { presentResultRow } from '../../query/present-result.ts';
import { queryColumns } from '../../query/query-columns.ts';
import { runAggregate } from '../../query/run-aggregate.ts';
import { candidateReleases } from './candidate-releases.ts';
import { requireDatasetAccess } from './dataset-access.ts';
import { releaseFilesGlob } from '../../ingest/lake-keys.ts';

/** Every dataset with the user's access to it: the catalog a researcher browses. */
export async function listDatasetsFor(platform: Platform, user: User): Promise<DatasetListing[]> {
  const datasets = await datasetsRepository(platform.catalog.db).list();
  const grants = grantsRepository(platform.catalog.db);
  const now = new Date();
  return Promise.all(
    datasets.map(async (dataset) => ({
      id: dataset.id,
      title: dataset.title,
      description: dataset.description,
      access: datasetAccess(user, await grants.active(user.id, dataset.id, now))?.level ?? null,
      dataUseTerms: dataset.contract.dataUseTerms,
    })),
  );
}

export type DictionaryEntry = {
  code: string;
  label: string | null;
  unit: string | null;
  rows: number | string;
  patients: number | string;
};

export type DatasetDictionary = {
  id: string;
  title: string;
  description: string;
  columns: Array<{ name: string; type: string; treatment: string }>;
  hospitals: string[];
  months: string[];
  releases: number;
  threshold: number;
  codes: DictionaryEntry[];
  rules: DisclosureRule[];
  deidentification: DeidentificationAssessment;
};

/** Dictionaries by dataset, access and the releases read: they change only with a new release. */
const cache = new Map<string, DatasetDictionary>();
const cacheSize = 100;

/**
 * The data dictionary of a dataset as the user may see it: its columns and how each was
 * de-identified, the hospitals and months covered, and every code present with its name, unit
 * and counts. Counts go through the same disclosure control as query results, and are withheld
 * from aggregate users of a dataset with noisy answers or a release ledger.
 */
export async function describeDataset(
  platform: Platform,
  user: User,
  datasetId: string,
): Promise<DatasetDictionary> {
  const dataset = await datasetsRepository(platform.catalog.db).get(datasetId);
  if (!dataset) throw notFound('dataset_not_found', `Dataset ${datasetId}`);
  const access = await requireDatasetAccess(platform, user, dataset.id);
  const releases = await candidateReleases(platform, { dataset: dataset.id }, access);
  const key = [
    dataset.id,
    dataset.contractVersion,
    access.level,
    ...releases.map((r) => r.id).sort(),
  ].join('|');
  const cached = cache.get(key);
  if (cached) return cached;

  const contract = dataset.contract;
  const threshold = contract.smallCellThreshold;
  const { codes, rules } = await codesOf(platform, contract, releases, access);
  const dictionary: DatasetDictionary = {
    id: dataset.id,
    title: dataset.title,
    description: dataset.description,
    columns: lakeColumns(contract).map((column) => ({
      name: column.name,
      type: column.type,
      treatment: column.treatment,
    })),
    hospitals: [...new Set(releases.map((release) => release.hospitalId))].sort(),
    months: [...new Set(releases.map((release) => release.month))].sort(),
    releases: releases.length,
    threshold,
    codes,
    rules,
    deidentification: assessDeidentification(contract),
  };
  if (cache.size >= cacheSize) cache.delete(cache.keys().next().value ?? '');
  cache.set(key, dictionary);
  return dictionary;
}

async function codesOf(
  platform: Platform,
  contract: DatasetContract,
  releases: Awaited<ReturnType<typeof candidateReleases>>,
  access: DatasetAccess,
): Promise<{ codes: DictionaryEntry[]; rules: DisclosureRule[] }> {
  const lake = lakeColumns(contract);
  const code = lake.find((column) => column.role === 'code');
  if (!code || releases.length === 0) return { codes: [], rules: [] };
  const label = lake.find((column) => column.role === 'code_label');
  const unit = lake.find((column) => column.role === 'unit');
  const spec = querySpecSchema.parse({
    dataset: contract.name,
    groupBy: [{ column: code.name, as: 'code' }],
    measures: [
      { fn: 'count' },
      { fn: 'patients' },
      ...(label ? [{ fn: 'min', column: label.name, as: 'label' }] : []),
      ...(unit ? [{ fn: 'min', column: unit.name, as: 'unit' }] : []),
    ],
  });
  const compiled = compileQuery(spec, {
    dialect: platform.engine.dialect,
    columns: queryColumns(contract),
    codeSets: {},
    files: {
      main: releases.map((release) => releaseFilesGlob(platform.store.locate(release.folder))),
      cohort: [],
    },
  });
  const { groups, total } = await runAggregate(platform.engine, compiled, {
    grouped: true,
    readsFiles: true,
  });
  const disclosed = applyDisclosureControl({
    groups,
    total,
    columns: compiled.columns,
    level: access.level,
    threshold: contract.smallCellThreshold,
    grouped: true,
  });
  // Counts that would bypass the dataset's budget or ledger are left out; the codes stay.
  const withheld =
    access.level === 'aggregate' &&
    (contract.privacy.noise !== undefined || releaseLedgerOn(contract.privacy));
  // For aggregate access a code of fewer patients than the threshold is not listed at all, as
  // any group that small is withheld: that it occurs at all is a fact about a few patients.
  const codes = disclosed.rows
    .map((row) => {
      const shown = presentResultRow(row, compiled.columns);
      return {
        code: String(shown.code),
        label: (row.label as string | null) ?? null,
        unit: (row.unit as string | null) ?? null,
        rows: withheld ? 'withheld' : (shown.rows as number | string),
        patients: withheld ? 'withheld' : (shown.patients as number | string),
      };
    })
    .sort((a, b) => (a.code < b.code ? -1 : a.code > b.code ? 1 : 0));
  const rules = disclosed.rules.map((rule) =>
    rule.rule === 'small_cell' && disclosed.withheld > 0
      ? {
          ...rule,
          description: `${disclosed.withheld} ${disclosed.withheld === 1 ? 'code has' : 'codes have'} fewer than ${contract.smallCellThreshold} patients and ${disclosed.withheld === 1 ? 'is' : 'are'} not listed: that ${disclosed.withheld === 1 ? 'it occurs' : 'they occur'} at all is a fact about a few patients.`,
        }
      : rule,
  );
  if (!withheld) return { codes, rules };
  return {
    codes,
    rules: [
      {
        rule: contract.privacy.noise ? 'noise' : 'release_ledger',
        description: `Counts per code are withheld: this dataset's answers ${contract.privacy.noise ? 'carry noise from a privacy budget' : 'are checked against the cells released to you before'}, which counts here would bypass. Ask a query for them.`,
        affected: codes.length,
      },
      ...rules,
    ],
  };
}
