import type { Readable } from 'node:stream';
import { parse } from 'csv-parse/sync';
import {
  expectedHeader,
  type ContractColumn,
  type DatasetContract,
  type IngestProblem,
  type SourceType,
} from '@medlake/shared';

/** A column of the uploaded file, and the contract column it feeds (none: dropped). */
export type SourceColumn = {
  /** 1-based position in the file. */
  position: number;
  /** The header as the file spells it. */
  header: string;
  column: ContractColumn | undefined;
  /** The type the engine reads the raw text as; validation errors come from this cast. */
  readAs: SourceType;
};

/** Everything an engine needs to turn one landed file into de-identified Parquet. */
export type IngestPlan = {
  contract: DatasetContract;
  hospitalId: string;
  /** YYYY-MM: the month the upload is for. */
  month: string;
  /** The uploaded file's name, for messages. */
  fileName: string;
  source: SourceColumn[];
  restrictedZip3: readonly string[];
};

/** Reads the raw text as the type the role needs; identifiers and codes stay text. */
export function readAsType(column: ContractColumn): SourceType {
  switch (column.role) {
    case 'birth_date':
    case 'event_date':
      return column.type;
    case 'measure':
      return column.allowText ? 'varchar' : column.type;
    case 'quasi_identifier':
    case 'code':
    case 'code_label':
    case 'unit':
    case 'category':
      return column.type;
    default:
      return 'varchar';
  }
}

const maxHeaderBytes = 1 << 20;
const otherDelimiters = [';', '\t', '|', ','];

/** Up to `limit` bytes from the start of a stream, which is then closed. */
async function firstBytes(file: Readable, limit: number): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let length = 0;
  try {
    for await (const chunk of file) {
      chunks.push(chunk as Buffer);
      length += (chunk as Buffer).length;
      if (length >= limit) break;
    }
  } finally {
    file.destroy();
  }
  return Buffer.concat(chunks).subarray(0, limit);
}

/**
 * Reads and checks the header line. Returns its fields, or the problems that stop the file
 * before any row is read: empty file, bad encoding, wrong delimiter, broken quoting.
 */
export async function readHeader(
  file: Readable,
  delimiter: string,
): Promise<{ fields: string[] } | { problems: IngestProblem[] }> {
  const bytes = await firstBytes(file, maxHeaderBytes);
  const fileProblem = (code: IngestProblem['code'], message: string, line: number | null = 1) => ({
    problems: [{ code, line, column: null, header: null, message }],
  });

  const newline = bytes.indexOf(0x0a);
  let line = newline === -1 ? bytes : bytes.subarray(0, newline);
  if (line.at(-1) === 0x0d) line = line.subarray(0, -1);
  // UTF-16 puts a NUL beside every ASCII letter; no CSV header holds one.
  if (
    line.includes(0x00) ||
    (bytes[0] === 0xff && bytes[1] === 0xfe) ||
    (bytes[0] === 0xfe && bytes[1] === 0xff)
  ) {
    return fileProblem(
      'invalid_encoding',
      'the header holds NUL bytes: the file is probably UTF-16; export it as UTF-8',
    );
  }
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(line);
  } catch {
    return fileProblem(
      'invalid_encoding',
      'the header is not valid UTF-8; export the file as UTF-8',
    );
  }
  text = text.replace(/^\uFEFF/, '');
  if (
    text.trim() === '' &&
    bytes
      .subarray(newline + 1)
      .toString()
      .trim() === ''
  ) {
    return fileProblem('empty_file', 'the file is empty', null);
  }

  let fields: string[];
  try {
    fields = (parse(text, { delimiter, relax_column_count: true }) as string[][])[0] ?? [];
  } catch {
    return fileProblem('unterminated_quote', 'the header has a quote that is not closed');
  }
  if (fields.length === 1) {
    const used = otherDelimiters.find((other) => other !== delimiter && text.includes(other));
    if (used) {
      const name = used === '\t' ? 'tab' : `"${used}"`;
      return fileProblem(
        'wrong_delimiter',
        `the header has a single column: the file seems to be separated by ${name}, but the contract expects "${delimiter}"`,
      );
    }
  }
  return { fields: fields.map((field) => field.trim()) };
}

/**
 * Matches the file's header to the contract: first through the hospital's own header mapping,
 * then by the contract's expected header, ignoring case. Every unknown, duplicate or missing
 * column is a problem on line 1.
 */
export function resolveHeader(
  fields: readonly string[],
  contract: DatasetContract,
  mapping: Readonly<Record<string, string>> = {},
): { source: SourceColumn[]; problems: IngestProblem[] } {
  const byName = new Map(contract.columns.map((column) => [column.name, column]));
  const byHeader = new Map(
    contract.columns.map((column) => [expectedHeader(column).toLowerCase(), column]),
  );
  const mapped = new Map(
    Object.entries(mapping).map(([header, name]) => [header.toLowerCase(), name]),
  );
  const problems: IngestProblem[] = [];
  const used = new Set<string>();
  const source: SourceColumn[] = [];

  fields.forEach((header, index) => {
    const position = index + 1;
    const mappedName = mapped.get(header.toLowerCase());
    const column = mappedName ? byName.get(mappedName) : byHeader.get(header.toLowerCase());
    const problem = (code: IngestProblem['code'], message: string) =>
      problems.push({ code, line: 1, column: position, header, message });

    if (!column) {
      if (contract.unknownColumns === 'reject') {
        problem(
          'unknown_column',
          `column ${header} is not in the contract of dataset ${contract.name}: map it to a contract column, or ask an admin to add it`,
        );
      }
      source.push({ position, header, column: undefined, readAs: 'varchar' });
      return;
    }
    if (used.has(column.name)) {
      problem('duplicate_column', `column ${header} is a second column for ${column.name}`);
      source.push({ position, header, column: undefined, readAs: 'varchar' });
      return;
    }
    used.add(column.name);
    source.push({ position, header, column, readAs: readAsType(column) });
  });

  for (const column of contract.columns) {
    const needed = column.required || column.role === 'patient_id';
    if (needed && !used.has(column.name)) {
      problems.push({
        code: 'missing_column',
        line: 1,
        column: null,
        header: null,
        message: `the required column ${column.name} (header ${expectedHeader(column)}) is missing`,
      });
    }
  }
  return { source, problems };
}
