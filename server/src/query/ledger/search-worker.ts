/**
 * The release ledger's set search in a thread of its own, started by search-threads.ts: it
 * takes a search's cells, runs `searchCombinations` on them as the main thread would, and
 * answers with the combinations it found, naming each cell by its place in the request. It
 * keeps nothing between searches and writes nothing to any log: what it is sent (ids, boxes,
 * counts of released cells) comes back only to the thread that sent it.
 */
import { parentPort } from 'node:worker_threads';
import type { SearchReply, SearchRequest } from './search-threads.ts';
import { searchCombinations, type SearchCell } from './search.ts';

/** A cell of the request with its place in it, which the search's copies of it carry along. */
type PlacedCell = SearchCell & { at: number };

const port = parentPort;
if (!port) throw new Error('The release ledger’s search thread runs as a worker thread only');

port.on('message', (request: SearchRequest) => {
  port.postMessage(answer(request));
});

function answer(request: SearchRequest): SearchReply {
  try {
    const place = (cells: SearchCell[], from: number): PlacedCell[] =>
      cells.map((cell, index) => Object.assign(cell, { at: from + index }));
    const found = searchCombinations(
      place(request.news, 0),
      place(request.earlier, request.news.length),
      request.bounds,
    );
    const at = (cell: SearchCell) => (cell as PlacedCell).at;
    return {
      ok: true,
      candidates: found.candidates.map((candidate) => ({
        terms: candidate.terms.map((term) => [at(term.cell), term.coefficient] as const),
        combination: candidate.combination,
      })),
      evaluated: found.evaluated,
      unexamined: found.unexamined.map(at),
    };
  } catch (error) {
    // The main thread throws it again as the same kind of error with the same message: what
    // the search throws in the main thread (a TypeError, a RangeError …) names no cell.
    if (!(error instanceof Error)) {
      return { ok: false, error: { name: 'Error', message: 'The release ledger’s search failed' } };
    }
    return {
      ok: false,
      error: {
        name: error.name,
        message: error.message,
        ...(error.stack === undefined ? {} : { stack: error.stack }),
      },
    };
  }
}
