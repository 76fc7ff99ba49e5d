// npm run bench:held-rollbacks -- --baseline DIR — what a refused submit costs the facts held in
// memory on PGlite (catalog/held-reads.ts), through this code and through another checkout of
// medlake (--baseline: a worktree of main before a change, with its own `npm ci`), in one
// process, alternately. Each side opens a PGlite catalog of its own with the shipped lab-results
// contract, a researcher, an aggregate grant and a token. Each round, on each side (each first on
// every other round), --reads times: a submit whose transaction records the job, then a read of
// the token's user and of the dataset with the user's grants, as every query makes before its
// engine starts; once with submits refused for a full queue (their transaction rolls back) and
// once with submits that find room (they commit: the watch's own cost). Prints, per kind and
// side, the medians over --rounds rounds (default 3) of the reads that went to the catalog
// (loads) and of the CPU time of one read of both facts; the ratios; and the load average before
// and after.
import { randomUUID } from 'node:crypto';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { loadavg, tmpdir } from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import type { Catalog } from '../server/src/catalog/catalog.ts';

const { values } = parseArgs({
  options: {
    baseline: { type: 'string' },
    reads: { type: 'string', default: '2000' },
    rounds: { type: 'string', default: '3' },
  },
});
if (!values.baseline) throw new Error('--baseline DIR: a checkout of medlake to compare with');
const reads = Number(values.reads);
const rounds = Number(values.rounds);
const kinds = ['refused', 'committed'] as const;
type Kind = (typeof kinds)[number];

type Side = {
  name: string;
  /** One submit of the given kind, then both reads; the CPU time of the reads, in ms. */
  step(kind: Kind): Promise<number>;
  loads(): number;
  close(): Promise<void>;
};

async function openSide(name: string, root: string): Promise<Side> {
  const from = (file: string) => import(pathToFileURL(path.join(root, file)).href);
  const { openCatalog } = await from('server/src/catalog/catalog.ts');
  const { migrateToLatest } = await from('server/src/catalog/migrate.ts');
  const { datasetsRepository } = await from('server/src/catalog/datasets-repository.ts');
  const { grantsRepository } = await from('server/src/catalog/grants-repository.ts');
  const { queryJobsRepository } = await from('server/src/catalog/query-jobs-repository.ts');
  const { usersRepository } = await from('server/src/catalog/users-repository.ts');
  const { userOfToken, datasetWithGrants } = await from('server/src/catalog/held-facts.ts');
  const { datasetContractSchema } = await from('shared/src/index.ts');

  const home = await mkdtemp(path.join(tmpdir(), `medlake-bench-held-${name}-`));
  const catalog: Catalog = await openCatalog({ directory: path.join(home, 'catalog') });
  if (!catalog.held) throw new Error(`${root} holds no facts on PGlite`);
  const held = catalog.held;
  const { db } = catalog;
  await migrateToLatest(db);
  const contractFile = path.join(root, 'server/config/contracts/lab-results.json');
  const contract = datasetContractSchema.parse(JSON.parse(await readFile(contractFile, 'utf8')));
  const datasetId = (await datasetsRepository(db).create(contract)).id;
  const users = usersRepository(db);
  const user = await users.create({ email: 'r@example.org', name: 'R', role: 'researcher' });
  await grantsRepository(db).add({
    datasetId,
    userId: user.id,
    projectId: null,
    level: 'aggregate',
    hospitals: null,
    expiresAt: null,
  });
  const { token } = await users.createToken(user.id, {
    name: 'bench',
    expiresAt: new Date(Date.now() + 86_400_000),
    scopes: ['query'],
  });

  const submit = (kind: Kind) =>
    db
      .transaction()
      .execute(async (trx) => {
        const job = await queryJobsRepository(trx).submit(
          {
            id: randomUUID(),
            userId: user.id,
            datasetId,
            spec: { dataset: datasetId },
            specSha256: 'bench',
            accessLevel: 'aggregate',
            engine: 'duckdb',
          },
          { waitingLimit: kind === 'refused' ? 0 : Number.MAX_SAFE_INTEGER },
        );
        if (!job) throw new Error('queue_full');
      })
      .catch((error: unknown) => {
        if (kind === 'committed' || (error as Error).message !== 'queue_full') throw error;
      });

  return {
    name,
    async step(kind) {
      await submit(kind);
      const before = process.cpuUsage();
      const now = new Date();
      const holder = await userOfToken(catalog, token, now);
      const access = await datasetWithGrants(catalog, datasetId, holder.user.id, now);
      const used = process.cpuUsage(before);
      if (access?.grants.length !== 1) throw new Error(`${name}: the grant is not read`);
      return (used.user + used.system) / 1000;
    },
    loads: () => held.loads,
    close: async () => {
      await catalog.close();
      await rm(home, { recursive: true, force: true });
    },
  };
}

const loadBefore = loadavg()
  .map((load) => load.toFixed(2))
  .join(' ');
const sides = [
  await openSide('this', path.resolve(import.meta.dirname, '..')),
  await openSide('baseline', path.resolve(values.baseline)),
];
type Sample = { loads: number; cpu: number };
const samples = new Map<string, Sample[]>();
try {
  for (const side of sides)
    for (const kind of kinds) for (let i = 0; i < 50; i += 1) await side.step(kind);
  for (let round = 0; round < rounds; round += 1) {
    for (const kind of kinds) {
      for (const side of round % 2 === 0 ? sides : sides.toReversed()) {
        const loads = side.loads();
        let cpu = 0;
        for (let i = 0; i < reads; i += 1) cpu += await side.step(kind);
        const key = `${kind}\u0000${side.name}`;
        samples.set(key, [
          ...(samples.get(key) ?? []),
          { loads: side.loads() - loads, cpu: cpu / reads },
        ]);
      }
    }
  }
} finally {
  for (const side of sides) await side.close();
}

const median = (list: number[]) => list.toSorted((a, b) => a - b)[list.length >> 1]!;
for (const kind of kinds) {
  const of = (side: string, key: keyof Sample) =>
    median(samples.get(`${kind}\u0000${side}`)!.map((sample) => sample[key]));
  console.log(
    `after each of ${reads} ${kind} submits, the token's user and the dataset with grants:`,
  );
  for (const side of ['this', 'baseline']) {
    console.log(
      `  ${side.padEnd(8)} reads from the catalog ${of(side, 'loads')}, CPU per read of both ${of(side, 'cpu').toFixed(3)} ms`,
    );
  }
  console.log(
    `  this / baseline: CPU ${(of('this', 'cpu') / of('baseline', 'cpu')).toFixed(3)} (medians of ${rounds} rounds, sides alternately)`,
  );
}
console.log(
  `load average before ${loadBefore}, after ${loadavg()
    .map((load) => load.toFixed(2))
    .join(' ')}`,
);
