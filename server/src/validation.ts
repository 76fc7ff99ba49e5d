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
