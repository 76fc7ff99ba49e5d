import { readdir, readFile } from 'node:fs/promises';
import { datasetContractSchema } from '@medlake/shared';
import { describe, expect, it } from 'vitest';

const contracts = new URL('../../config/contracts/', import.meta.url);

/** Markdown's marks: code, emphasis, headings, links. */
const markdown = /[`*#]|\]\(/;
/** A medlake command: the CLI's top-level commands after its name. */
const command =
  /\bmedlake\s+(serve|ingest|send|datasets|hospitals|releases|query|users|stewards|grants|projects|access-requests|audit|vault|demo|db|backup|restore)\b/;

/**
 * A contract's description is what researchers read about a dataset in the catalog and on its
 * page, shown as plain text: Markdown would show its marks, and a medlake command means nothing
 * to someone who works in the web app (a field note found both on the demo dataset).
 */
describe('the shipped contracts', () => {
  it('describe their data in plain words, with no Markdown and no command', async () => {
    const files = (await readdir(contracts)).filter((file) => file.endsWith('.json'));
    expect(files).toContain('lab-results.json');
    for (const file of files) {
      const contract = datasetContractSchema.parse(
        JSON.parse(await readFile(new URL(file, contracts), 'utf8')),
      );
      const description = contract.description ?? '';
      expect(description.length, file).toBeGreaterThan(40);
      expect(description, file).not.toMatch(markdown);
      expect(description, file).not.toMatch(command);
    }
  });
});
