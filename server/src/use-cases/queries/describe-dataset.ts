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
import type { SummedCode } from '../../catalog/dictionary-figures-repository.ts';
import {
  compileQuery,
  hiddenPatients,
  hiddenRows,
  type ResultColumn,
} from '../../query/compile-query.ts';
import {
  applyDisclosureControl,
  type AggregateRow,
  type DisclosureRule,
} from '../../query/disclosure.ts';
import { presentResultRow } from '../../query/present-result.ts';
import { queryColumns } from '../../query/query-columns.ts';
import { releasesRepository } from '../../catalog/releases-repository.ts';
import { releaseFolder } from '../../ingest/lake-keys.ts';
import { requireDatasetAccess } from './dataset-access.ts';
import { readDictionaryFigures } from './dictionary-figures.ts';
import { releaseFileLocations } from '../../ingest/lake-keys.ts';

type Dataset = { id: string; contract: DatasetContract; contractVersion: number };

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

/**
 * The data dictionary of a dataset as the user may see it: its columns and how each was
 * de-identified, the hospitals and months covered, and every code present with its name, unit
 * and counts. Counts go through the same disclosure control as query results, and are withheld
 * from aggregate users of a dataset with noisy answers or a release ledger. The counts are read
 * from the catalog, where publishing a release stores them (dictionary-figures.ts): a request
 * does not scan the lake, so no cache of dictionaries is kept either.
 */
export async function describeDataset(
  platform: Platform,
  user: User,
  datasetId: string,
): Promise<DatasetDictionary> {
  const dataset = await datasetsRepository(platform.catalog.db).get(datasetId);
  if (!dataset) throw notFound('dataset_not_found', `Dataset ${datasetId}`);
  const access = await requireDatasetAccess(platform, user, dataset.id);
  // The current releases within the grant, without what their files hold: a query's planner
  // needs that (candidate-releases.ts), the dictionary does not, and at 500 TB it is millions
  // of rows of the catalog.
  const releases = (
    await releasesRepository(platform.catalog.db).locations(
      dataset.id,
      undefined,
      access.hospitals ? { hospitals: access.hospitals } : {},
    )
  ).map((release) => ({
    ...release,
    folder: releaseFolder({ ...release, releaseId: release.id }),
  }));
  const contract = dataset.contract;
  const threshold = contract.smallCellThreshold;
  const { codes, rules } = await codesOf(platform, dataset, releases, access);
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
  return dictionary;
}

async function codesOf(
  platform: Platform,
  dataset: Dataset,
  releases: ReadonlyArray<{ hospitalId: string; folder: string; fileCount: number }>,
  access: DatasetAccess,
): Promise<{ codes: DictionaryEntry[]; rules: DisclosureRule[] }> {
  const contract = dataset.contract;
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
      main: releases.flatMap((release) => releaseFileLocations(platform.store, release)),
      cohort: [],
    },
  });
  const { groups, total } = aggregateRowsOf(
    await readDictionaryFigures(
      platform,
      dataset,
      releases.map((release) => release.hospitalId),
      access.hospitals ?? null,
    ),
    compiled.columns,
  );
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

/**
 * The stored figures as the rows the engine gives for the dictionary's aggregate (a group per
 * code, and the total), so that disclosure control treats them exactly as before.
 */
function aggregateRowsOf(
  figures: Awaited<ReturnType<typeof readDictionaryFigures>>,
  columns: readonly ResultColumn[],
): { groups: AggregateRow[]; total: AggregateRow } {
  const named = (fn: string) => columns.find((column) => column.fn === fn)?.name ?? fn;
  const [rows, patients] = [named('count'), named('patients')];
  const row = (code: SummedCode): AggregateRow => ({
    code: code.code,
    [rows]: code.rows,
    [patients]: code.patients,
    label: code.label,
    unit: code.unit,
    [hiddenRows]: code.rows,
    [hiddenPatients]: code.patients,
  });
  const totalRows = figures.codes.reduce((sum, code) => sum + code.rows, 0);
  return {
    groups: figures.codes.map(row),
    total: row({
      code: null,
      rows: totalRows,
      patients: figures.totalPatients,
      label: null,
      unit: null,
    }),
  };
}
