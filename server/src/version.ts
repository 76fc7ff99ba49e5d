import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);

/** The platform's version, from the server package. */
export const version: string = (require('../package.json') as { version: string }).version;
