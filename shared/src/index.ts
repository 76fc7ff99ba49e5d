export * from './contract.ts';
export * from './errors.ts';
export * from './health.ts';
export * from './ingest.ts';
export * from './query-spec.ts';
export * from './query-result.ts';
export * from './audit.ts';
export * from './accounts.ts';
