import { readFile, readdir } from 'node:fs/promises';
import path from 'node:path';
import { errorCatalog, errorCodeList, isErrorCode } from '@medlake/shared';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { userWithToken } from '../../test/api-helpers.ts';
import { createTestApp, createTestPlatform, type TestPlatform } from '../../test/helper.ts';
import type { App } from '../app.ts';

const serverSource = path.resolve(import.meta.dirname, '..');
const errorsDoc = path.resolve(import.meta.dirname, '../../../docs/errors.md');

/** The server's source files, tests left out. */
async function sourceFiles(): Promise<Array<{ file: string; text: string }>> {
  const entries = await readdir(serverSource, { recursive: true, withFileTypes: true });
  const files = entries
    .filter((entry) => entry.isFile() && entry.name.endsWith('.ts'))
    .filter((entry) => !entry.name.endsWith('.test.ts'))
    .map((entry) => path.join(entry.parentPath, entry.name));
  return Promise.all(files.map(async (file) => ({ file, text: await readFile(file, 'utf8') })));
}

/**
 * Every code the server raises by name: the first argument of its error constructors, of
 * notFound and of errors built on AppError, a download's refusals, and the error bodies the
 * HTTP layer writes out itself (the error handler, load shedding).
 */
function raisedCodes(file: string, text: string): string[] {
  const patterns = [
    /new (?:AppError|UnavailableError|AuditedRefusalError)\(\s*'([^']+)'/g,
    /\bnotFound\(\s*'([^']+)'/g,
    /extends (?:AppError|UnavailableError) \{[^}]*?\bsuper\(\s*'([^']+)'/g,
    /\brefuse\(\s*'[^']+',\s*'([^']+)'/g,
    ...(file.includes(`${path.sep}http${path.sep}`) ? [/\bcode: '([^']+)',\s*message:/g] : []),
  ];
  return patterns.flatMap((pattern) => [...text.matchAll(pattern)].map((match) => match[1]!));
}

/** The rows of the Markdown table in docs/errors.md, cell by cell, as Prettier may pad them. */
function docRows(markdown: string): string[][] {
  return markdown
    .split('\n')
    .filter((line) => /^\|\s*`[a-z_]+`\s*\|/.test(line))
    .map((line) =>
      line
        .slice(1, -1)
        .split('|')
        .map((cell) => cell.trim()),
    );
}

describe('error codes', () => {
  it('has every code the server raises in the table, and no code the server never raises', async () => {
    const files = await sourceFiles();
    const unknown = files.flatMap(({ file, text }) =>
      raisedCodes(file, text)
        .filter((code) => !isErrorCode(code))
        .map((code) => `${path.relative(serverSource, file)}: ${code}`),
    );
    expect(unknown).toEqual([]);
    // A code in the table that no source file names is a cause clients are told of in vain.
    const named = new Set(
      files.flatMap(({ text }) => [...text.matchAll(/'([a-z_]+)'/g)].map((m) => m[1])),
    );
    expect(errorCodeList.filter((code) => !named.has(code))).toEqual([]);
  });

  it('documents the same codes, statuses, meanings and actions in docs/errors.md', async () => {
    const rows = docRows(await readFile(errorsDoc, 'utf8'));
    expect(rows).toEqual(
      Object.entries(errorCatalog).map(([code, entry]) => [
        `\`${code}\``,
        String(entry.status),
        entry.meaning,
        entry.action,
      ]),
    );
  });
});

describe('error codes in the OpenAPI document', () => {
  let platform: TestPlatform;
  let app: App;

  beforeAll(async () => {
    platform = await createTestPlatform();
    app = await createTestApp(platform);
  });

  afterAll(async () => {
    await app.close();
    await platform.dispose();
  });

  it('lists every code with its status, and the error body allows exactly those codes', async () => {
    const { token } = await userWithToken(platform, 'api@example.org', { name: 'api' });
    const response = await app.inject({
      method: 'GET',
      url: '/api/docs/json',
      headers: { authorization: `Bearer ${token}` },
    });
    expect(response.statusCode).toBe(200);
    const document = response.json<{
      info: { description: string };
      'x-error-codes': unknown;
      paths: Record<string, Record<string, { responses: Record<string, unknown> }>>;
    }>();
    expect(document['x-error-codes']).toEqual(errorCatalog);
    expect(docRows(document.info.description)).toEqual(docRows(await readFile(errorsDoc, 'utf8')));
    // A route's error answer names the codes a client may meet.
    const notFound = document.paths['/api/v1/datasets/{id}/dictionary']?.get?.responses['404'] as {
      content: { 'application/json': { schema: unknown } };
    };
    expect(JSON.stringify(notFound.content['application/json'].schema)).toContain(
      '"dataset_not_found"',
    );
  });
});
