import type { FastifyRequest } from 'fastify';
import { AppError } from '../errors.ts';
import { nulCharacterPath } from '../validation.ts';

/**
 * A preValidation hook: a JSON body or query string with a NUL character anywhere is refused
 * with a 400 naming where, before any route stores it (PostgreSQL refuses NUL in text and
 * JSON, which would otherwise surface as a 500).
 */
export async function refuseNulCharacters(request: FastifyRequest): Promise<void> {
  for (const [part, value] of [
    ['body', request.body],
    ['query', request.query],
    ['params', request.params],
  ] as const) {
    // A streamed body (an upload) is not JSON: nulCharacterPath passes over it.
    const path = nulCharacterPath(value);
    if (path !== undefined) {
      throw new AppError('invalid_input', 'Text may not hold NUL characters', [
        { path: `${part}${path === '(body)' ? '' : `.${path}`}`, message: 'holds a NUL character' },
      ]);
    }
  }
}
