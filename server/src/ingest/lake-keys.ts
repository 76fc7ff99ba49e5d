import type { ScanFiles } from '../engines/sql-dialect.ts';
import type { ObjectStore } from '../storage/object-store.ts';

/**
 * Where a release's Parquet files live in the lake: one folder per release, under folders
 * named for its hospital and month (the partition columns the engines read from the path).
 * Queries read a release as its folder's files, so the catalog never has to hand the planner
 * each file's name.
 */
export function releaseFolder(release: {
  datasetId: string;
  hospitalId: string;
  month: string;
  releaseId: string;
}): string {
  return `lake/${release.datasetId}/hospital=${release.hospitalId}/month=${release.month}/release=${release.releaseId}`;
}

/** The files of a release folder, as a glob both engines read. */
export function releaseFilesGlob(folderLocation: string): string {
  return `${folderLocation}/*.parquet`;
}

/**
 * Where an engine reads a release: its folder and how many files the catalog lists for it, so
 * that the engine fails the statement when the folder does not hold them all (a glob over the
 * folder alone would pass over a lost file and answer with fewer rows, on both engines). A
 * release the catalog lists no files for is read as its folder's glob.
 */
export function releaseFileLocations(
  store: Pick<ObjectStore, 'locate'>,
  release: { folder: string; fileCount?: number | undefined },
): ScanFiles[] {
  const folder = store.locate(release.folder);
  return release.fileCount ? [{ folder, files: release.fileCount }] : [releaseFilesGlob(folder)];
}

/** The name of a release's n-th Parquet file (from 0). */
export function releaseFileName(index: number): string {
  return `part-${index}.parquet`;
}

/** The release files (part-N.parquet) in a folder of the store, by name, in order. */
export async function releaseFilesIn(store: ObjectStore, folder: string): Promise<string[]> {
  const numberOf = (name: string) => Number(/^part-(\d+)\.parquet$/.exec(name)?.[1] ?? NaN);
  return (await store.list(`${folder}/`))
    .map((key) => key.slice(folder.length + 1))
    .filter((name) => Number.isInteger(numberOf(name)))
    .sort((a, b) => numberOf(a) - numberOf(b));
}
