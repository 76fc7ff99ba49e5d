import pino, { type DestinationStream, type Logger } from 'pino';

/**
 * Field names that hold patient data in any shape of object we might log. Redaction is the
 * last line of defence: code should not log such objects in the first place.
 */
const patientFields = [
  'patient_id',
  'mrn',
  'ssn',
  'first',
  'last',
  'first_name',
  'last_name',
  'name',
  'address',
  'city',
  'zip',
  'phone',
  'email',
  'birthdate',
  'birth_date',
  'deathdate',
  'pseudonym',
];

const credentialPaths = [
  'req.headers.authorization',
  'req.headers.cookie',
  'req.headers["x-api-key"]',
  'res.headers["set-cookie"]',
  'password',
  '*.password',
  'token',
  '*.token',
];

export const redactedPaths = [
  ...credentialPaths,
  ...patientFields.flatMap((field) => [field, `*.${field}`, `*.*.${field}`]),
];

/**
 * Query parameters that are credentials: a download link's signature works as a key, and the
 * OpenID provider's authorization code and state come back to the sign-on callback.
 */
const secretQueryParameters = ['signature', 'code', 'state'];

/** A request as logged: its URL without the values of secret query parameters. */
function serializeRequest(request: {
  method?: string;
  url?: string;
  host?: string;
  ip?: string;
}): Record<string, unknown> {
  let url = request.url ?? '';
  for (const name of secretQueryParameters) {
    url = url.replace(new RegExp(`([?&]${name}=)[^&]*`, 'g'), '$1[redacted]');
  }
  return { method: request.method, url, host: request.host, remoteAddress: request.ip };
}

export function createLogger(level: string, destination?: DestinationStream): Logger {
  return pino(
    {
      level,
      redact: { paths: redactedPaths, censor: '[redacted]' },
      base: { service: 'medlake' },
      serializers: { req: serializeRequest },
    },
    destination,
  );
}

export type { Logger };
