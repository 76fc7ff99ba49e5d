// Child process of bench/ingest.ts: one medlake ingest of the file, on a fresh MEDLAKE_HOME.
// Times the ingest use-case alone (landing, validation, de-identification, Parquet, publish),
// not the process start. Prints one JSON line.
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { loadEnv } from '../server/src/env.ts';
import { openPlatform } from '../server/src/platform.ts';
import { ingestUpload } from '../server/src/use-cases/ingest-upload.ts';
import { addHospital, saveDataset } from '../server/src/use-cases/manage-datasets.ts';

// With WARM_UP_CSV, that month is ingested first, untimed, so that its patients are known.
const [csv, month, warmUpCsv, warmUpMonth] = process.argv.slice(2);
if (!csv || !month)
  throw new Error('usage: ingest-medlake.ts CSV MONTH [WARM_UP_CSV WARM_UP_MONTH]');
const home = await mkdtemp(path.join(tmpdir(), 'medlake-bench-home-'));
const platform = await openPlatform(loadEnv({ MEDLAKE_HOME: home, LOG_LEVEL: 'silent' }), {
  migrate: true,
});
const benchActor = { userId: null, name: 'bench', source: 'bench' };
try {
  const contract = new URL('../server/config/contracts/lab-results.json', import.meta.url);
  await saveDataset(platform, JSON.parse(await readFile(contract, 'utf8')));
  await addHospital(platform, benchActor, { id: 'h01', name: 'Benchmark hospital' });
  if (warmUpCsv && warmUpMonth) {
    const warmUp = await ingestUpload(platform, {
      actor: benchActor,
      datasetId: 'lab-results',
      hospitalId: 'h01',
      month: warmUpMonth,
      fileName: path.basename(warmUpCsv),
      source: { file: warmUpCsv },
    });
    if (warmUp.status !== 'published') throw new Error('the warm-up ingest did not publish');
  }
  const started = performance.now();
  // When each phase started, to show where the time goes.
  const phases: Array<[string, number]> = [];
  const result = await ingestUpload(platform, {
    actor: { userId: null, name: 'bench', source: 'bench' },
    datasetId: 'lab-results',
    hospitalId: 'h01',
    month,
    fileName: path.basename(csv),
    source: { file: csv },
    onProgress: (progress) => {
      if (phases.at(-1)?.[0] !== progress.phase) phases.push([progress.phase, performance.now()]);
    },
  });
  const seconds = (performance.now() - started) / 1000;
  if (result.status !== 'published')
    throw new Error(`the ingest did not publish: ${JSON.stringify(result).slice(0, 500)}`);
  const finished = started + seconds * 1000;
  const phaseSeconds = Object.fromEntries(
    phases.map(([phase, at], index) => [phase, ((phases[index + 1]?.[1] ?? finished) - at) / 1000]),
  );
  const peakRssBytes = process.resourceUsage().maxRSS * 1024;
  console.log(JSON.stringify({ seconds, rows: result.rows, phaseSeconds, peakRssBytes }));
} finally {
  await platform.close();
  await rm(home, { recursive: true, force: true });
}
