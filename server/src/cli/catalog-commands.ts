import {
  assessDeidentification,
  expectedHeader,
  formatAssessment,
  lakeColumns,
} from '@medlake/shared';
import type { Command } from 'commander';
import { cliOperator } from '../caller.ts';
import { datasetsRepository } from '../catalog/datasets-repository.ts';
import { hospitalsRepository } from '../catalog/hospitals-repository.ts';
import { releasesRepository } from '../catalog/releases-repository.ts';
import { AppError, notFound } from '../errors.ts';
import { inferContract } from '../use-cases/infer-contract.ts';
import { addHospital, mapHospitalHeaders, saveDataset } from '../use-cases/manage-datasets.ts';
import { formatBytes, formatProblem, printTable } from './format.ts';
import { withPlatform } from './open-for-command.ts';
import { readJson } from './read-json.ts';
import { runCommand } from './run-command.ts';

export function registerCatalogCommands(program: Command): void {
  const datasets = program.command('datasets').description('dataset contracts');

  datasets
    .command('create')
    .description('create a dataset from a contract file (JSON)')
    .requiredOption('-c, --contract <file>', 'the contract')
    .option('--replace', 'replace the contract of an existing dataset (a new contract version)')
    .action((options: { contract: string; replace?: boolean }) =>
      runCommand((env) =>
        withPlatform(env, async (platform) => {
          const dataset = await saveDataset(platform, await readJson(options.contract), {
            replace: options.replace,
          });
          console.log(
            `Dataset ${dataset.id} (contract version ${dataset.contractVersion}) is ready.`,
          );
        }),
      ),
    );

  datasets
    .command('infer')
    .description('propose a contract from a CSV header and sample, flagging identifying columns')
    .argument('<file>', 'a CSV export')
    .option('-n, --name <id>', 'the dataset id to propose')
    .action((file: string, options: { name?: string }) =>
      runCommand(async () => {
        const { contract, warnings } = await inferContract(file, options.name);
        for (const warning of warnings) console.error(`note: ${warning}`);
        console.log(JSON.stringify(contract, null, 2));
      }),
    );

  datasets
    .command('list')
    .description('list datasets')
    .action(() =>
      runCommand((env) =>
        withPlatform(env, async (platform) => {
          const all = await datasetsRepository(platform.catalog.db).list();
          if (all.length === 0)
            console.log(
              'No datasets yet. Create one with medlake datasets create --contract FILE.',
            );
          printTable(
            all.map((dataset) => ({
              id: dataset.id,
              version: dataset.contractVersion,
              title: dataset.title,
            })),
          );
        }),
      ),
    );

  datasets
    .command('show')
    .description("show a dataset's contract and what de-identification does to each column")
    .argument('<id>')
    .action((id: string) =>
      runCommand((env) =>
        withPlatform(env, async (platform) => {
          const dataset = await datasetsRepository(platform.catalog.db).get(id);
          if (!dataset) throw notFound('dataset_not_found', `Dataset ${id}`);
          console.log(
            `${dataset.title} (${dataset.id}, contract version ${dataset.contractVersion})`,
          );
          console.log(
            `dates: ${dataset.contract.datePolicy}; patient ids: per ${dataset.contract.patientIdSpace === 'shared' ? 'shared id space' : 'hospital'}\n`,
          );
          printTable(
            dataset.contract.columns.map((column) => ({
              header: expectedHeader(column),
              column: column.name,
              role: column.role,
            })),
          );
          console.log('\nIn the lake:');
          printTable(
            lakeColumns(dataset.contract).map((column) => ({
              column: column.name,
              type: column.type,
              from: column.source,
              treatment: column.treatment,
            })),
          );
        }),
      ),
    );

  datasets
    .command('assess')
    .description(
      "what the contract does with each of HIPAA's 18 identifiers, the standard the lake meets (Safe Harbor or a Limited Data Set), and the quasi-identifiers row-level users see together",
    )
    .argument('<id>')
    .option('--json', 'print the assessment as JSON')
    .action((id: string, options: { json?: boolean }) =>
      runCommand((env) =>
        withPlatform(env, async (platform) => {
          const dataset = await datasetsRepository(platform.catalog.db).get(id);
          if (!dataset) throw notFound('dataset_not_found', `Dataset ${id}`);
          const assessment = assessDeidentification(dataset.contract);
          console.log(
            options.json ? JSON.stringify(assessment, null, 2) : formatAssessment(assessment),
          );
        }),
      ),
    );

  datasets
    .command('map')
    .description("record a hospital's own header names for a dataset's columns")
    .requiredOption('-d, --dataset <id>')
    .requiredOption('-H, --hospital <id>')
    .requiredOption('-f, --file <file>', 'JSON: { "their header": "contract column name" }')
    .action((options: { dataset: string; hospital: string; file: string }) =>
      runCommand((env) =>
        withPlatform(env, async (platform) => {
          const mapping = await readJson(options.file);
          if (
            typeof mapping !== 'object' ||
            mapping === null ||
            Object.values(mapping).some((value) => typeof value !== 'string')
          ) {
            throw new AppError(
              'contract_invalid',
              'The mapping must be an object of header names to column names',
            );
          }
          await mapHospitalHeaders(
            platform,
            options.dataset,
            options.hospital,
            mapping as Record<string, string>,
          );
          console.log(`Saved the header mapping of ${options.hospital} for ${options.dataset}.`);
        }),
      ),
    );

  const hospitals = program.command('hospitals').description('hospitals that deliver data');
  hospitals
    .command('add')
    .description('add a hospital')
    .argument('<id>', 'a short id, e.g. st-mary')
    .requiredOption('--name <name>', 'display name')
    .action((id: string, options: { name: string }) =>
      runCommand((env) =>
        withPlatform(env, async (platform) => {
          const hospital = await addHospital(platform, cliOperator(), { id, name: options.name });
          console.log(`Hospital ${hospital.id} (${hospital.name}) added.`);
        }),
      ),
    );
  hospitals
    .command('list')
    .description('list hospitals')
    .action(() =>
      runCommand((env) =>
        withPlatform(env, async (platform) => {
          printTable(
            (await hospitalsRepository(platform.catalog.db).list()).map((h) => ({
              id: h.id,
              name: h.name,
            })),
          );
        }),
      ),
    );

  const releases = program
    .command('releases')
    .description('published releases and their quality reports');
  releases
    .command('list')
    .description('list releases; * marks the current one of each hospital and month')
    .option('-d, --dataset <id>')
    .option('-H, --hospital <id>')
    .action((options: { dataset?: string; hospital?: string }) =>
      runCommand((env) =>
        withPlatform(env, async (platform) => {
          const all = await releasesRepository(platform.catalog.db).list({
            datasetId: options.dataset,
            hospitalId: options.hospital,
          });
          if (all.length === 0) console.log('No releases yet.');
          printTable(
            all.map((release) => ({
              ' ': release.current ? '*' : '',
              id: release.id,
              dataset: release.datasetId,
              hospital: release.hospitalId,
              month: release.month,
              rows: release.rowCount,
              rejected: release.rejectedRowCount,
              published: release.publishedAt.toISOString().slice(0, 19).replace('T', ' '),
            })),
          );
        }),
      ),
    );
  releases
    .command('show')
    .description("a release's data-quality report")
    .argument('<id>')
    .option('--json', 'print the release as JSON')
    .action((id: string, options: { json?: boolean }) =>
      runCommand((env) =>
        withPlatform(env, async (platform) => {
          const release = await releasesRepository(platform.catalog.db)
            .get(id)
            .catch(() => undefined);
          if (!release) throw notFound('release_not_found', `Release ${id}`);
          if (options.json) {
            console.log(JSON.stringify(release, null, 2));
            return;
          }
          const q = release.quality;
          console.log(`Release ${release.id}${release.current ? ' (current)' : ''}`);
          console.log(
            `${release.datasetId} · ${release.hospitalId} · ${release.month} · published ${release.publishedAt.toISOString()}`,
          );
          console.log(`source ${formatBytes(release.sourceBytes)}, content ${release.contentId}`);
          console.log(
            `\n${q.rows} rows, ${q.patients} patients, ${q.rejectedRows} rejected rows, ${q.eventsOutsideMonth} rows dated outside ${release.month}`,
          );
          for (const [reason, count] of Object.entries(q.rejectedByReason))
            console.log(`  rejected for ${reason}: ${count}`);
          for (const problem of q.rejectedSamples) console.log(`  ${formatProblem(null, problem)}`);
          console.log('\nEmpty values per column:');
          printTable(
            q.columns.map((column) => ({
              column: column.name,
              empty: `${(column.nullRate * 100).toFixed(1)}%`,
            })),
          );
          console.log('\nValues per code:');
          const round = (value: number | null) =>
            value === null ? '' : String(Math.round(value * 100) / 100);
          printTable(
            q.codes.map((code) => ({
              code: code.code,
              unit: code.unit ?? '',
              rows: code.count,
              min: round(code.min),
              q1: round(code.q1),
              median: round(code.median),
              q3: round(code.q3),
              max: round(code.max),
              mean: round(code.mean),
              name: code.label ?? '',
            })),
          );
          console.log(
            q.comparedWith
              ? `\nAgainst ${q.comparedWith.month}:`
              : '\nNo earlier month to compare with.',
          );
          if (q.comparedWith && q.changes.length === 0) console.log('  no notable change');
          for (const change of q.changes) console.log(`  ${change.message}`);
        }),
      ),
    );
}
