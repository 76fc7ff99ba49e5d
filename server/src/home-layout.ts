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
    landing: path.join(objects, 'landing'),
    lake: path.join(objects, 'lake'),
    results: path.join(objects, 'results'),
    /** Keys the embedded default generated for itself (the vault key), outside the vault. */
    keys: path.join(home, 'keys'),
    /** Per-job scratch space of ingests: holds real identifiers while a job runs. */
    work: path.join(home, 'work'),
    engineTemp: path.join(home, 'tmp', 'engine'),
  };
}

export type HomeLayout = ReturnType<typeof homeLayout>;
