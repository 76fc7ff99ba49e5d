import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['shared/**/*.test.ts', 'server/**/*.test.ts', 'web/src/**/*.test.{ts,tsx}'],
    globalSetup: ['server/test/global-setup.ts'],
    // PGlite, DuckDB and child processes make some tests slow to start on two cores.
    testTimeout: 60_000,
    hookTimeout: 120_000,
  },
});
