import { describe, expect, it } from 'vitest';
import { describeProgress, progressPrinter } from './ingest-command.ts';

const step = {
  bytes: 2_700_000_000,
  percent: null,
  rowsProcessed: null,
  rowsTotal: null,
  rowsPerSecond: null,
  estimated: false,
  counting: 'rows' as const,
};

describe("the CLI's ingest progress", () => {
  it('tells the rows read so far and the rate, as an estimate while the step runs', () => {
    expect(
      describeProgress({
        ...step,
        phase: 'reading',
        percent: 83.4,
        rowsProcessed: 8_340_000,
        rowsTotal: 10_000_000,
        rowsPerSecond: 180_000,
        estimated: true,
      }),
    ).toBe('reading        83%, about 8,340,000 of 10,000,000 rows, 180,000 rows/s');
  });

  it('tells the counted figure when a step ends, and patients while pseudonymizing', () => {
    expect(
      describeProgress({
        ...step,
        phase: 'reading',
        percent: 100,
        rowsProcessed: 9_999_998,
        rowsTotal: 9_999_998,
        rowsPerSecond: 175_000,
      }),
    ).toBe('reading        100%, 9,999,998 rows, 175,000 rows/s');
    expect(
      describeProgress({
        ...step,
        phase: 'pseudonymizing',
        percent: 50,
        rowsProcessed: 400_000,
        rowsTotal: 800_000,
        rowsPerSecond: 90_000,
        counting: 'patients',
      }),
    ).toBe('pseudonymizing 50%, 400,000 of 800,000 patients, 90,000 patients/s');
  });

  it('says only how far it got when the engine cannot count rows', () => {
    expect(describeProgress({ ...step, phase: 'writing', percent: 40 })).toBe('writing        40%');
  });
});

describe("the CLI's ingest progress printer", () => {
  const reading = {
    ...step,
    phase: 'reading' as const,
    percent: 0,
    rowsProcessed: 0,
    rowsTotal: 10_000_000,
    estimated: true,
  };

  it("prints a step's start once, though the pipeline and the engine both report 0 %", () => {
    const lines: string[] = [];
    const print = progressPrinter(step.bytes, Date.now(), (line) => lines.push(line));
    // The pipeline's own 0 % (no rate yet), then the engine's first report, 0 % at 0 rows/s.
    print(reading);
    print({ ...reading, rowsPerSecond: 0 });
    print({ ...reading, percent: 12, rowsProcessed: 1_200_000, rowsPerSecond: 150_000 });
    print({
      ...reading,
      percent: 100,
      rowsProcessed: 9_999_998,
      rowsTotal: 9_999_998,
      estimated: false,
    });
    print({ ...reading, phase: 'checking', rowsTotal: 9_999_998 });
    expect(lines).toEqual([
      'reading        0%, about 0 of 10,000,000 rows',
      'reading        12%, about 1,200,000 of 10,000,000 rows, 150,000 rows/s',
      'reading        100%, 9,999,998 rows',
      'checking       0%, about 0 of 9,999,998 rows',
    ]);
  });
});
