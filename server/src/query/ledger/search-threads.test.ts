import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer, get, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { lakeSearches, searchAsData } from '../../../test/ledger-searches.ts';
import type { Catalog } from '../../catalog/catalog.ts';
import { lockReleaseLedger, ledgerLockKeys } from './lock.ts';
import { point, type Box } from './regions.ts';
import { ledgerSearchThreads, searchInWorker, SearchThreads } from './search-threads.ts';
import { searchCombinations, type SearchBounds, type SearchCell } from './search.ts';

const cell = (id: string, box: Box, earlier: boolean): SearchCell => ({
  id,
  box,
  rows: 100,
  patients: 50,
  earlier,
});

describe('the ledger’s search in a worker thread', () => {
  let server: Server;
  let served: string[];

  beforeAll(async () => {
    served = [];
    server = createServer((request, response) => {
      served.push(request.url ?? '');
      response.end('ok');
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  });

  afterAll(async () => {
    await new Promise((resolve) => server.close(resolve));
  });

  /** A request to the test's server, answered by this thread's event loop. */
  const request = (url: string) =>
    new Promise<void>((resolve, reject) => {
      const { port } = server.address() as AddressInfo;
      get({ host: '127.0.0.1', port, path: url }, (response) => {
        response.resume();
        response.on('end', resolve);
      }).on('error', reject);
    });

  it('finds what the main thread finds, bit for bit, on the bench lake’s first askings', async () => {
    const bounds: SearchBounds[] = [
      { neighbours: 24, combinations: 20_000 },
      // The bound reached: cells left unexamined, the same ones.
      { neighbours: 24, combinations: 300 },
    ];
    let candidates = 0;
    let unexamined = 0;
    for (const { news, earlier } of lakeSearches()) {
      for (const bound of bounds) {
        const here = searchCombinations(news, earlier, bound);
        const there = await searchInWorker(news, earlier, bound);
        expect(searchAsData(there)).toEqual(searchAsData(here));
        expect(JSON.stringify(searchAsData(there))).toBe(JSON.stringify(searchAsData(here)));
        // The caller's own cells come back, as the ledger finds them by id and holds them back.
        for (const candidate of there.candidates) {
          for (const term of candidate.terms) {
            expect([...news, ...earlier]).toContain(term.cell);
          }
        }
        candidates += there.candidates.length;
        unexamined += there.unexamined.length;
      }
    }
    expect(candidates).toBeGreaterThan(0);
    expect(unexamined).toBeGreaterThan(0);
  });

  it('leaves the event loop free: requests are served while a long search runs', async () => {
    const [heavy] = lakeSearches();
    const { news, earlier } = heavy!;
    const bounds = { neighbours: 24, combinations: 1_000_000 };
    // Each way: requests one after the other from the moment the search starts, until it ends.
    const measure = async (search: () => Promise<unknown>) => {
      const events: string[] = [];
      let searching = true;
      const asking = (async () => {
        while (searching) {
          await request('/health');
          if (searching) events.push('request');
        }
      })();
      await search();
      searching = false;
      events.push('search');
      await asking;
      return events;
    };
    // In the main thread (as until 2026-12-07): nothing else is served until the search ends.
    const inThread = await measure(async () => searchCombinations(news, earlier, bounds));
    expect(inThread).toEqual(['search']);
    // In a worker thread: requests are answered while it runs.
    const inWorker = await measure(() => searchInWorker(news, earlier, bounds));
    expect(inWorker.at(-1)).toBe('search');
    expect(inWorker.indexOf('request')).toBe(0);
    expect(served.length).toBeGreaterThan(1);
  });

  it('throws the search’s own error as the same kind, with the same message', async () => {
    // A box whose constraint has no ranges: the geometry fails on it.
    const broken = { code: { nulls: false } } as unknown as Box;
    const news = [cell('n', broken, false)];
    const earlier = [cell('e', { code: point('a') }, true)];
    let here: unknown;
    try {
      searchCombinations(news, earlier);
    } catch (error) {
      here = error;
    }
    expect(here).toBeInstanceOf(TypeError);
    const there = await searchInWorker(news, earlier).then(
      () => undefined,
      (error: unknown) => error,
    );
    expect(there).toBeInstanceOf(TypeError);
    expect((there as Error).message).toBe((here as Error).message);
    // The thread is still there for the next search.
    const next = await searchInWorker(
      [cell('n', { code: point('a') }, false)],
      [cell('e', { code: point('a') }, true)],
    );
    expect(next.evaluated).toBe(0);
  });

  it('fails a search whose thread dies with an error that names no cell, and starts another', async () => {
    const folder = await mkdtemp(path.join(tmpdir(), 'medlake-search-threads-'));
    try {
      // A thread that dies on its first search.
      const file = path.join(folder, 'dying-worker.mjs');
      await writeFile(
        file,
        "import { parentPort } from 'node:worker_threads';\nparentPort.on('message', () => process.exit(3));\n",
      );
      const threads = new SearchThreads(pathToFileURL(file), { size: 1, idleMs: 60_000 });
      const news = [cell('n-7f3a', { code: point('718-7') }, false)];
      const earlier = [cell('e-91c2', { code: point('718-7') }, true)];
      const failures = await Promise.all(
        [0, 1].map(() =>
          searchInWorker(news, earlier, undefined, threads).then(
            () => undefined,
            (error: unknown) => error as Error,
          ),
        ),
      );
      for (const failure of failures) {
        expect(failure?.message).toBe('The release ledger’s search thread stopped (exit code 3)');
        expect(failure?.message).not.toMatch(/n-7f3a|e-91c2|718-7/);
      }
      // The second search, queued behind the first, ran on a thread of its own.
      expect(threads.completed).toBe(0);
      expect(threads.threads).toBe(0);
      await threads.close();
    } finally {
      await rm(folder, { recursive: true, force: true });
    }
  });

  it('fails the searches running and queued when its threads are stopped', async () => {
    const threads = new SearchThreads(new URL('./search-worker.ts', import.meta.url), {
      size: 1,
      idleMs: 60_000,
    });
    const [heavy] = lakeSearches();
    const outcomes = [0, 1].map(() =>
      searchInWorker(heavy!.news, heavy!.earlier, undefined, threads).then(
        () => 'answered',
        (error: unknown) => (error as Error).message,
      ),
    );
    await threads.close();
    expect(await Promise.all(outcomes)).toEqual([
      'The release ledger’s search threads were stopped',
      'The release ledger’s search threads were stopped',
    ]);
    expect(threads.threads).toBe(0);
    expect(threads.completed).toBe(0);
  });

  it('keeps the ledger’s lock while the search runs: a second check waits for the first', async () => {
    // The in-process queue of the embedded catalog: its database object is only its key.
    const catalog = { kind: 'pglite', db: {} } as unknown as Pick<Catalog, 'kind' | 'db'>;
    const names = ledgerLockKeys('project:a', 'u1');
    const [heavy] = lakeSearches();
    const events: string[] = [];
    let searching!: () => void;
    const started = new Promise<void>((resolve) => (searching = resolve));
    const first = (async () => {
      const release = await lockReleaseLedger(catalog, names, 'lab');
      events.push('first locked');
      const search = searchInWorker(heavy!.news, heavy!.earlier);
      searching();
      await search;
      events.push('first searched');
      await release();
      events.push('first released');
    })();
    // The second check starts while the first one's search is in the thread.
    await started;
    const second = (async () => {
      const release = await lockReleaseLedger(catalog, names, 'lab');
      events.push('second locked');
      await release();
    })();
    await Promise.all([first, second]);
    expect(events).toEqual(['first locked', 'first searched', 'first released', 'second locked']);
  });

  it('is one pool for the process, of at most two threads; an idle thread is stopped', async () => {
    expect(ledgerSearchThreads()).toBe(ledgerSearchThreads());
    expect(ledgerSearchThreads().threads).toBeLessThanOrEqual(2);
    const threads = new SearchThreads(new URL('./search-worker.ts', import.meta.url), {
      size: 1,
      idleMs: 1,
    });
    const found = await searchInWorker(
      [cell('n', { code: point('a') }, false)],
      [cell('e', { code: point('a') }, true)],
      undefined,
      threads,
    );
    expect(found.evaluated).toBe(0);
    expect(threads.completed).toBe(1);
    await vi.waitFor(() => expect(threads.threads).toBe(0), { timeout: 30_000 });
  });
});
