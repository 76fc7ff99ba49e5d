// Child process of bench/ingest.ts: one medlake ingest of the file, on a fresh MEDLAKE_HOME.
// Times the ingest use-case alone (landing, validation, de-identification, Parquet, publish),
// not the process start. Prints one JSON line.
import { readFileSync, writeFileSync } from 'node:fs';
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
// bench/vault.ts sets the vault service's settings; nothing else of the environment counts.
const vaultService = Object.fromEntries(
  Object.entries(process.env).filter(([name]) =>
    /^MEDLAKE_VAULT_(URL|CA_PATH|CLIENT_CERT_PATH|CLIENT_KEY_PATH)$/.test(name),
  ),
);
const platform = await openPlatform(
  loadEnv({ MEDLAKE_HOME: home, LOG_LEVEL: 'silent', ...vaultService }),
  { migrate: true },
);
const benchActor = { userId: null, name: 'bench', source: 'bench' };
try {
  const contract = new URL('../server/config/contracts/lab-results.json', import.meta.url);
  const parsed = JSON.parse(await readFile(contract, 'utf8')) as {
    columns: Record<string, unknown>[];
    multiLineValues?: boolean;
  };
  // BENCH_SINGLE_LINE_VALUES: no value spans lines, so that Spark reads the file in splits.
  if (process.env.BENCH_SINGLE_LINE_VALUES) parsed.multiLineValues = false;
  // BENCH_WITHOUT_UNITS: the contract without canonical units, to measure what converting costs.
  if (process.env.BENCH_WITHOUT_UNITS) {
    parsed.columns = parsed.columns.map(
      ({ canonicalUnits: _, ...column }: Record<string, unknown>) => column,
    );
  }
  await saveDataset(platform, parsed);
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
  // The process's peak so far (opening the catalog, migrating it, the warm-up) is not the
  // ingest's: Linux resets the high-water mark on request, and reports it in /proc.
  const peakBefore = process.resourceUsage().maxRSS * 1024;
  const highWaterMark = resetHighWaterMark();
  const started = performance.now();
  // The CPU time of every thread of the process (DuckDB's included): on a machine shared with
  // other work, a steadier figure than the wall clock.
  const cpuBefore = process.cpuUsage();
  // When each phase started, to show where the time goes.
  const phases: Array<[string, number, number]> = [];
  const cpuNow = () => {
    const used = process.cpuUsage(cpuBefore);
    return (used.user + used.system) / 1e6;
  };
  // The highest resident memory seen in each phase, sampled while DuckDB works on its threads
  // (the vault's work is synchronous, and shows only in the process's overall peak).
  const phasePeakRss: Record<string, number> = {};
  const sample = () => {
    const phase = phases.at(-1)?.[0] ?? 'starting';
    phasePeakRss[phase] = Math.max(phasePeakRss[phase] ?? 0, process.memoryUsage.rss());
  };
  const sampler = setInterval(sample, 100);
  const result = await ingestUpload(platform, {
    actor: { userId: null, name: 'bench', source: 'bench' },
    datasetId: 'lab-results',
    hospitalId: 'h01',
    month,
    fileName: path.basename(csv),
    source: { file: csv },
    onProgress: (progress) => {
      sample();
      if (phases.at(-1)?.[0] !== progress.phase)
        phases.push([progress.phase, performance.now(), cpuNow()]);
      sample();
    },
  }).finally(() => clearInterval(sampler));
  const seconds = (performance.now() - started) / 1000;
  const cpu = process.cpuUsage(cpuBefore);
  if (result.status !== 'published')
    throw new Error(`the ingest did not publish: ${JSON.stringify(result).slice(0, 500)}`);
  const finished = started + seconds * 1000;
  const phaseSeconds = Object.fromEntries(
    phases.map(([phase, at], index) => [phase, ((phases[index + 1]?.[1] ?? finished) - at) / 1000]),
  );
  // The CPU time of each phase (every thread): where it is near the phase's wall time, one of
  // the two cores was idle.
  const cpuSeconds = (cpu.user + cpu.system) / 1e6;
  const phaseCpuSeconds = Object.fromEntries(
    phases.map(([phase, , at], index) => [phase, (phases[index + 1]?.[2] ?? cpuSeconds) - at]),
  );
  const ingestPeakRssBytes = highWaterMark ? readHighWaterMark() : undefined;
  const peakRssBytes = process.resourceUsage().maxRSS * 1024;
  console.log(
    JSON.stringify({
      seconds,
      cpuSeconds,
      rows: result.rows,
      phaseSeconds,
      phaseCpuSeconds,
      phasePeakRss,
      peakRssBytes,
      ingestPeakRssBytes,
      setupPeakRssBytes: peakBefore,
    }),
  );
} finally {
  await platform.close();
  await rm(home, { recursive: true, force: true });
}

/** Resets the kernel's record of this process's peak resident memory; false where it cannot. */
function resetHighWaterMark(): boolean {
  try {
    writeFileSync('/proc/self/clear_refs', '5');
    return true;
  } catch {
    return false;
  }
}

/** The peak resident memory since the last reset, in bytes. */
function readHighWaterMark(): number | undefined {
  const match = /^VmHWM:\s+(\d+) kB$/m.exec(readFileSync('/proc/self/status', 'utf8'));
  return match ? Number(match[1]) * 1024 : undefined;
}
