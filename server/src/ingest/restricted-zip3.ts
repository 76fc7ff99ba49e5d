import { readFileSync } from 'node:fs';
import { z } from 'zod';

const listSchema = z.object({
  version: z.string().min(1),
  source: z.string(),
  prefixes: z.array(z.string().regex(/^\d{3}$/)),
});

export type RestrictedZip3 = z.infer<typeof listSchema>;

const defaultList = new URL('../../config/safe-harbor/restricted-zip3.json', import.meta.url);

/**
 * The 3-digit ZIP areas that Safe Harbor turns into 000. Kept as a versioned file, not code,
 * because the list changes with each census.
 */
export function loadRestrictedZip3(file: URL | string = defaultList): RestrictedZip3 {
  return listSchema.parse(JSON.parse(readFileSync(file, 'utf8')));
}
