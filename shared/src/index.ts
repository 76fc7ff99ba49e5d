export * from './contract.ts';
export * from './errors.ts';
export * from './health.ts';
export * from './ingest.ts';
