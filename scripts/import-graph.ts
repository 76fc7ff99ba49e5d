// The import graph of server/src between folders, and the imports that point up the layers of
// docs/ARCHITECTURE.md ("Layers"). ESLint refuses the upward imports that matter most; this
// prints all of them, with the folders that import each other, so the figures can be compared.
//
//   node scripts/import-graph.ts            folders, edges, upward edges and cycles
//   node scripts/import-graph.ts --files    the same, with the file imports behind each
//   node scripts/import-graph.ts --tests    tests' imports counted too
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';

const root = path.resolve(import.meta.dirname, '../server/src');

/**
 * Lowest first. An import from a file to one on a higher layer points upward. A path names a
 * folder (and what is under it, unless listed itself) or one file. Folders that only hold
 * tests are on top: they may import anything.
 */
const layers: ReadonlyArray<{ name: string; paths: readonly string[] }> = [
  {
    name: 'base',
    paths: [
      'errors.ts',
      'error-handler.ts',
      'env.ts',
      'logger.ts',
      'version.ts',
      'validation.ts',
      'home-layout.ts',
      'key-file.ts',
    ],
  },
  { name: 'stores', paths: ['storage', 'catalog', 'vault'] },
  {
    // Leaves the core shares: the engine contract, the parts of an open platform it is handed,
    // and the privacy secrets and sampler that the compiler and the noise both use.
    name: 'services and contracts',
    paths: [
      'audit',
      'accounts',
      'downloads',
      'caller.ts',
      'engines/types.ts',
      'engines/sql-dialect.ts',
      'platform-parts.ts',
      'privacy/privacy-secrets.ts',
      'privacy/discrete-laplace.ts',
    ],
  },
  { name: 'core', paths: ['query', 'ingest', 'privacy', 'policy.ts'] },
  { name: 'engines and demo data', paths: ['engines', 'demo'] },
  { name: 'platform', paths: ['platform.ts'] },
  { name: 'use-cases', paths: ['use-cases'] },
  { name: 'http', paths: ['http'] },
  { name: 'routes', paths: ['routes'] },
  { name: 'entry points', paths: ['app.ts', 'cli'] },
  { name: 'test-only', paths: ['faults', 'security', 'clients'] },
];

function layerOf(file: string): number {
  let best = { length: -1, layer: -1 };
  layers.forEach((layer, index) => {
    for (const p of layer.paths) {
      const matches = file === p || file.startsWith(`${p}/`);
      if (matches && p.length > best.length) best = { length: p.length, layer: index };
    }
  });
  if (best.layer < 0) throw new Error(`${file} is on no layer: add it to scripts/import-graph.ts`);
  return best.layer;
}

function sourceFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const full = path.join(dir, entry.name);
    if (entry.isDirectory()) return sourceFiles(full);
    return entry.name.endsWith('.ts') ? [full] : [];
  });
}

const showFiles = process.argv.includes('--files');
const withTests = process.argv.includes('--tests');
const relativeImport =
  /(?:^|\n)\s*(?:import|export)\s[^;]*?from\s+['"](\.[^'"]+)['"]|import\(\s*['"](\.[^'"]+)['"]\s*\)/g;

// A file directly in server/src stands for itself: app.ts and errors.ts are layers apart.
const folderOf = (file: string) => (path.dirname(file) === '.' ? file : path.dirname(file));
const edges = new Map<string, string[]>();
const upward = new Map<string, string[]>();
const folders = new Set<string>();
const fileImports = new Set<string>();

for (const full of sourceFiles(root)) {
  const file = path.relative(root, full);
  if (!withTests && file.endsWith('.test.ts')) continue;
  folders.add(folderOf(file));
  for (const match of readFileSync(full, 'utf8').matchAll(relativeImport)) {
    const target = path.relative(root, path.resolve(path.dirname(full), match[1] ?? match[2]!));
    if (target.startsWith('..')) continue; // server/test helpers, outside the layers
    const [from, to] = [folderOf(file), folderOf(target)];
    const line = `${file} -> ${target}`;
    fileImports.add(line);
    if (from !== to)
      edges.set(`${from} -> ${to}`, [...(edges.get(`${from} -> ${to}`) ?? []), line]);
    if (layerOf(file) < layerOf(target)) {
      upward.set(`${from} -> ${to}`, [...(upward.get(`${from} -> ${to}`) ?? []), line]);
    }
  }
}

const cycles = [...edges.keys()]
  .map((edge) => edge.split(' -> ') as [string, string])
  .filter(([from, to]) => from < to && edges.has(`${to} -> ${from}`))
  .map(([from, to]) => `${from} <-> ${to}`);

const fileCycles = [...fileImports]
  .map((line) => line.split(' -> ') as [string, string])
  .filter(([from, to]) => from < to && fileImports.has(`${to} -> ${from}`))
  .map(([from, to]) => `${from} <-> ${to}`);

const print = (title: string, map: Map<string, string[]>) => {
  console.log(`\n${title}:`);
  for (const [edge, lines] of [...map].sort()) {
    console.log(`  ${edge} (${lines.length})`);
    if (showFiles) for (const line of lines) console.log(`      ${line}`);
  }
};
print('upward edges', upward);
console.log(`\nfolders that import each other:\n${cycles.map((c) => `  ${c}`).join('\n')}`);
console.log(`\nfiles that import each other:\n${fileCycles.map((c) => `  ${c}`).join('\n')}`);
console.log(
  `\n${folders.size} folders (files in server/src each count as one), ${edges.size} edges between them, ` +
    `${upward.size} upward (${[...upward.values()].flat().length} imports), ${cycles.length} folder cycles, ${fileCycles.length} file cycles`,
);
