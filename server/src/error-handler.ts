import type { ErrorBody, ErrorCode } from '@medlake/shared';
import type { FastifyError, FastifyReply, FastifyRequest } from 'fastify';
import { hasZodFastifySchemaValidationErrors } from 'fastify-type-provider-zod';
import { AppError } from './errors.ts';

/** Fastify's own client errors by status; any other 4xx of its own is malformed input. */
const codeOfFastifyStatus = new Map<number, ErrorCode>([
  [404, 'route_not_found'],
  [413, 'payload_too_large'],
  [415, 'unsupported_media_type'],
  [429, 'rate_limited'],
]);

/**
 * The one place where errors become HTTP answers. Expected errors keep their code, status and
 * message; anything unexpected is logged and answered with a generic 500 that gives away
 * nothing but the request id to quote when reporting it.
 */
export function handleError(
  error: FastifyError | Error,
  request: FastifyRequest,
  reply: FastifyReply,
): FastifyReply {
  if (hasZodFastifySchemaValidationErrors(error)) {
    return send(reply, 400, {
      code: 'invalid_input',
      message: `The request ${error.validationContext ?? 'input'} is invalid`,
      details: error.validation.map((issue) => ({
        path: issue.instancePath || '/',
        message: issue.message ?? 'invalid',
      })),
    });
  }
  if (error instanceof AppError) {
    return send(reply, error.status, {
      code: error.code,
      message: error.message,
      ...(error.details ? { details: error.details } : {}),
    });
  }
  // Fastify's own client errors (bad JSON, unsupported media type, body too large …) carry a
  // 4xx status and a message written for the caller.
  const status = 'statusCode' in error ? error.statusCode : undefined;
  if (status !== undefined && status >= 400 && status < 500) {
    return send(reply, status, {
      code: codeOfFastifyStatus.get(status) ?? 'invalid_input',
      message: error.message,
    });
  }

  request.log.error({ err: error }, 'unexpected error');
  return send(reply, 500, {
    code: 'internal',
    message: `Something went wrong on our side. Quote request id ${request.id} when reporting it.`,
  });
}

function send(reply: FastifyReply, status: number, error: ErrorBody['error']): FastifyReply {
  return reply.status(status).send({ error } satisfies ErrorBody);
}
