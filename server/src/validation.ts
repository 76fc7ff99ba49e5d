import type { z } from 'zod';
import type { ErrorDetail } from './errors.ts';

/** A zod error as details the caller can act on: each problem with its path in the input. */
export function zodIssues(error: z.ZodError, root: string): ErrorDetail[] {
  return error.issues.map((issue) => ({
    path: issue.path.length > 0 ? formatPath(issue.path) : root,
    message: issue.message,
  }));
}

function formatPath(path: readonly PropertyKey[]): string {
  return path
    .map((part, index) =>
      typeof part === 'number' ? `[${part}]` : `${index === 0 ? '' : '.'}${String(part)}`,
    )
    .join('');
}

/**
 * Refuses JSON nested deeper than `maxDepth` before a recursive schema walks it: a deep enough
 * document would otherwise exhaust the stack.
 */
export function nestingDepth(value: unknown): number {
  let deepest = 0;
  const pending: Array<[unknown, number]> = [[value, 1]];
  while (pending.length > 0) {
    const [item, depth] = pending.pop() as [unknown, number];
    if (item === null || typeof item !== 'object') continue;
    deepest = Math.max(deepest, depth);
    for (const child of Object.values(item)) pending.push([child, depth + 1]);
  }
  return deepest;
}

/**
 * Where a JSON document holds a NUL character (in a key or a string), or undefined. No text
 * medlake keeps may hold one: PostgreSQL cannot store it, and no name, code or value needs it.
 */
export function nulCharacterPath(value: unknown): string | undefined {
  const pending: Array<[unknown, string]> = [[value, '']];
  while (pending.length > 0) {
    const [item, path] = pending.pop() as [unknown, string];
    if (typeof item === 'string') {
      if (item.includes('\u0000')) return path || '(body)';
      continue;
    }
    if (item === null || typeof item !== 'object' || !isPlainJson(item)) continue;
    for (const [key, child] of Object.entries(item)) {
      const childPath = Array.isArray(item) ? `${path}[${key}]` : path ? `${path}.${key}` : key;
      if (key.includes('\u0000')) return childPath;
      pending.push([child, childPath]);
    }
  }
  return undefined;
}

/** Arrays and plain objects, as JSON parses them; not a request stream or a buffer. */
function isPlainJson(value: object): boolean {
  const prototype = Object.getPrototypeOf(value);
  return Array.isArray(value) || prototype === Object.prototype || prototype === null;
}
