// @ts-check
import js from '@eslint/js';
import prettier from 'eslint-config-prettier';
import globals from 'globals';
import tseslint from 'typescript-eslint';

export default tseslint.config(
  {
    ignores: [
      '**/node_modules/**',
      'web/dist/**',
      '.medlake/**',
      '.test-services/**',
      // A Python venv or build of the Python client can hold JavaScript of its packages.
      'clients/python/.venv/**',
      'clients/python/build/**',
      'clients/python/dist/**',
    ],
  },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    rules: {
      '@typescript-eslint/no-explicit-any': 'error',
      '@typescript-eslint/consistent-type-imports': 'error',
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_' }],
    },
  },
  {
    files: ['server/**', 'bench/**', 'scripts/**', '*.js', '*.ts'],
    languageOptions: { globals: globals.node },
  },
  {
    // shared/ is imported by both the server and the browser: no Node, DOM or server imports.
    files: ['shared/**'],
    rules: {
      'no-restricted-imports': [
        'error',
        { patterns: ['node:*', '@medlake/server', '@medlake/web', '**/server/**', '**/web/**'] },
      ],
    },
  },
  {
    // The web app talks to the server over HTTP only; it never imports server code.
    files: ['web/**'],
    languageOptions: { globals: globals.browser },
    rules: {
      'no-restricted-imports': [
        'error',
        { patterns: ['node:*', '@medlake/server', '**/server/**'] },
      ],
    },
  },
  {
    // Layers only call downward (docs/ARCHITECTURE.md, "Layers"): the engine-neutral core, the
    // engines and demo data, and everything below them (services, stores, the base files) never
    // reach up to the use-cases, the HTTP side or the platform's opening. Their tests may: they
    // build whole platforms.
    files: [
      'server/src/{query,ingest,privacy,engines,demo,audit,accounts,downloads}/**/*.ts',
      'server/src/{storage,catalog,vault}/**/*.ts',
      'server/src/{policy,platform-parts,caller,errors,error-handler,env,logger}.ts',
      'server/src/{validation,version,home-layout,key-file}.ts',
    ],
    ignores: ['**/*.test.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          patterns: [
            {
              group: ['**/use-cases/**', '**/routes/**', '**/http/**', '**/cli/**'],
              message:
                'The core never calls upward: move the caller into use-cases/, or what it needs down here.',
            },
            {
              group: ['**/platform.ts', '**/app.ts'],
              message:
                'The core never imports platform.ts: take the parts it uses as PlatformParts (platform-parts.ts).',
            },
          ],
        },
      ],
    },
  },
  {
    // Thin routes: a route calls use-cases, never a repository. Row types for presenters are fine.
    files: ['server/src/routes/**/*.ts'],
    ignores: ['**/*.test.ts'],
    rules: {
      '@typescript-eslint/no-restricted-imports': [
        'error',
        {
          patterns: [
            {
              group: ['**/catalog/*-repository.ts'],
              allowTypeImports: true,
              message: 'Routes read and write through use-cases, never a repository.',
            },
          ],
        },
      ],
    },
  },
  prettier,
);
