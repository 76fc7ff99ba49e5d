import path from 'node:path';

/**
 * Where each piece of the embedded default lives under MEDLAKE_HOME. One place, so that the
 * engine's allowed directories and the stores agree.
 */
export function homeLayout(home: string) {
  const objects = path.join(home, 'objects');
  return {
    home,
    catalog: path.join(home, 'catalog'),
    objects,
    lake: path.join(objects, 'lake'),
    results: path.join(objects, 'results'),
    vault: path.join(home, 'vault'),
    engineTemp: path.join(home, 'tmp', 'engine'),
  };
}

export type HomeLayout = ReturnType<typeof homeLayout>;
