import { createReadStream } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { locateRecords } from './locate-records.ts';

describe('locateRecords', () => {
  let directory: string;

  beforeAll(async () => {
    directory = await mkdtemp(path.join(tmpdir(), 'medlake-locate-'));
  });

  afterAll(async () => {
    await rm(directory, { recursive: true, force: true });
  });

  async function file(text: string): Promise<string> {
    const name = path.join(directory, `${Math.random().toString(36).slice(2)}.csv`);
    await writeFile(name, text);
    return name;
  }

  it('counts blank lines, values that span lines, and rejected lines', async () => {
    const csv = await file('a,b\r\n1,x\r\n\r\n2,"multi\r\nline"\r\nbroken\r\n3,y\r\n\r\n\r\n4,z');
    const lines = await locateRecords(createReadStream(csv), ',', [0, 1, 2, 3], new Set([6]));
    expect(lines).toEqual(
      new Map([
        [0, 2],
        [1, 4],
        [2, 7],
        [3, 10],
      ]),
    );
  });

  it('locates the records before a quote that is never closed, and only those', async () => {
    const csv = await file('a,b\n1,x\n2,y\n"3,z\n4,w\n');
    expect(await locateRecords(createReadStream(csv), ',', [1, 2, 3], new Set())).toEqual(
      new Map([[1, 3]]),
    );
  });

  it('stops after the last record wanted', async () => {
    const csv = await file(`a\n${Array.from({ length: 1000 }, (_, i) => i).join('\n')}\n`);
    expect(await locateRecords(createReadStream(csv), ',', [5], new Set())).toEqual(
      new Map([[5, 7]]),
    );
  });
});
