import { readFileSync } from 'node:fs';
import { z } from 'zod';

const codeSetsSchema = z.object({
  version: z.string().min(1),
  description: z.string(),
  sets: z.record(
    z.string().regex(/^[a-z0-9-]{1,64}$/),
    z.object({ title: z.string(), codes: z.array(z.string().min(1)).min(1) }),
  ),
});

export type CodeSets = z.infer<typeof codeSetsSchema>;

const defaultFile = new URL('../../config/code-sets/loinc.json', import.meta.url);

let loaded: CodeSets | undefined;

/**
 * Named code sets, kept as versioned configuration so that clinicians can change them. Read
 * once per process: a changed file takes effect at the next start.
 */
export function loadCodeSets(file?: URL | string): CodeSets {
  if (file) return codeSetsSchema.parse(JSON.parse(readFileSync(file, 'utf8')));
  loaded ??= codeSetsSchema.parse(JSON.parse(readFileSync(defaultFile, 'utf8')));
  return loaded;
}

/** Name → codes, as the query compiler takes them. */
export function codeSetCodes(sets: CodeSets): Record<string, readonly string[]> {
  return Object.fromEntries(Object.entries(sets.sets).map(([name, set]) => [name, set.codes]));
}
