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
  prettier,
);
