import type { IngestProblem } from '@medlake/shared';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestPlatform, type TestPlatform } from '../../test/helper.ts';
import { fixtureLines, ingest, listFiles, prepareDataset } from '../../test/ingest-helpers.ts';
import { deployments } from '../../test/deployments.ts';
import { releasesRepository } from '../catalog/releases-repository.ts';

type Case = {
  name: string;
  /** Builds the file from the fixture's header and rows. */
  build: (header: string, rows: string[]) => string | Buffer;
  /** The first problem the report must name. */
  expected: Partial<IngestProblem> & { code: IngestProblem['code'] };
};

const replaceField = (row: string, index: number, value: string) =>
  row
    .split(',')
    .map((field, i) => (i === index ? value : field))
    .join(',');

// Fields of the fixture: MRN 0, SSN 1, FIRST 2, LAST 3, BIRTHDATE 4, … DATE 13, … VALUE 18.
const corpus: Case[] = [
  {
    name: 'a file separated by semicolons',
    build: (header, rows) =>
      [header, ...rows.slice(0, 5)].map((line) => line.replaceAll(',', ';')).join('\n'),
    expected: { code: 'wrong_delimiter', line: 1 },
  },
  {
    name: 'a quote that is never closed',
    build: (header, rows) =>
      [header, ...rows.slice(0, 6), `"${rows[6]}`, ...rows.slice(7, 12)].join('\n'),
    expected: { code: 'unterminated_quote', line: 8 },
  },
  {
    name: 'a row with a field missing',
    build: (header, rows) =>
      [
        header,
        ...rows.slice(0, 3),
        rows[3]?.split(',').slice(0, -1).join(','),
        ...rows.slice(4, 10),
      ].join('\n'),
    expected: { code: 'missing_fields', line: 5 },
  },
  {
    name: 'a row with a field too many',
    build: (header, rows) => [header, rows[0], `${rows[1]},extra`, ...rows.slice(2, 10)].join('\n'),
    expected: { code: 'extra_fields', line: 3 },
  },
  {
    name: 'an impossible observation date',
    build: (header, rows) =>
      [
        header,
        ...rows.slice(0, 20),
        replaceField(rows[20] ?? '', 13, '2020-12-32T10:00:00Z'),
        ...rows.slice(21, 30),
      ].join('\n'),
    expected: { code: 'invalid_value', line: 22, column: 14, header: 'DATE' },
  },
  {
    name: 'a birth date in another format',
    build: (header, rows) =>
      [header, replaceField(rows[0] ?? '', 4, '28/05/1938'), ...rows.slice(1, 10)].join('\n'),
    expected: { code: 'invalid_value', line: 2, column: 5, header: 'BIRTHDATE' },
  },
  {
    name: 'bytes that are not UTF-8',
    build: (header, rows) =>
      Buffer.concat([
        Buffer.from([header, ...rows.slice(0, 4)].join('\n') + '\n'),
        Buffer.from(replaceField(rows[4] ?? '', 17, 'Albumin \xff\xfe'), 'latin1'),
        Buffer.from('\n' + rows.slice(5, 10).join('\n')),
      ]),
    expected: { code: 'invalid_encoding', line: 6 },
  },
  {
    name: 'a column the contract does not know',
    build: (header, rows) =>
      [`${header},NOTES`, ...rows.slice(0, 5).map((row) => `${row},x`)].join('\n'),
    expected: { code: 'unknown_column', line: 1, column: 22, header: 'NOTES' },
  },
  {
    name: 'a required column that is missing',
    build: (header, rows) =>
      [
        header.replace('MRN,', ''),
        ...rows.slice(0, 5).map((row) => row.slice(row.indexOf(',') + 1)),
      ].join('\n'),
    expected: { code: 'missing_column', line: 1 },
  },
  {
    name: 'an empty patient id',
    build: (header, rows) =>
      [header, ...rows.slice(0, 8), replaceField(rows[8] ?? '', 0, ''), ...rows.slice(9, 15)].join(
        '\n',
      ),
    expected: { code: 'missing_value', line: 10, column: 1, header: 'MRN' },
  },
  {
    name: 'an empty patient id after a blank line and a value that spans two lines',
    build: (header, rows) =>
      [
        header,
        ...rows.slice(0, 3),
        '',
        replaceField(rows[3] ?? '', 17, '"Alanine aminotransferase\n(ALT)"'),
        rows[4],
        replaceField(rows[5] ?? '', 0, ''),
        ...rows.slice(6, 10),
      ].join('\n'),
    expected: { code: 'missing_value', line: 9, column: 1, header: 'MRN' },
  },
  {
    name: 'an empty file',
    build: () => '',
    expected: { code: 'empty_file', line: null },
  },
  {
    name: 'a header and no rows',
    build: (header) => `${header}\n`,
    expected: { code: 'header_only', line: 2 },
  },
];

describe.each(deployments)('malformed uploads on %s', (_, { engineEnv, storage }) => {
  let platform: TestPlatform;
  let header: string;
  let rows: string[];

  beforeAll(async () => {
    platform = await createTestPlatform('pglite', engineEnv(), { storage });
    await prepareDataset(platform, 'synthea-observations');
    ({ header, rows } = await fixtureLines('2020-12'));
  });

  afterAll(async () => {
    await platform.dispose();
  });

  it.each(corpus)(
    '$name: names line and column, and publishes nothing',
    async ({ build, expected }) => {
      const result = await ingest(platform, { text: build(header, rows), month: '2020-12' });
      expect(result.status).toBe('rejected');
      if (result.status !== 'rejected') return;
      expect(result.problems[0]).toMatchObject(expected);
      expect(result.problemCount).toBeGreaterThanOrEqual(1);

      expect(await releasesRepository(platform.catalog.db).list()).toEqual([]);
      expect(await platform.store.list('')).toEqual([]);
      expect(await listFiles(platform.layout.work)).toEqual([]);
    },
  );

  it('never quotes the offending value in a message', async () => {
    const secret = '999-88-7777';
    const bad = [header, replaceField(rows[0] ?? '', 4, secret), ...rows.slice(1, 5)].join('\n');
    const result = await ingest(platform, { text: bad, month: '2020-12' });
    expect(JSON.stringify(result)).not.toContain(secret);
    expect(result.status).toBe('rejected');
  });

  it('reads a file that starts with a byte order mark and ends lines with CRLF', async () => {
    const text = `\uFEFF${[header, ...rows.slice(0, 50)].join('\r\n')}\r\n`;
    const result = await ingest(platform, { text, month: '2020-12' });
    expect(result).toMatchObject({ status: 'published', rows: 50 });
  });
});
