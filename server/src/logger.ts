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

export function createLogger(level: string, destination?: DestinationStream): Logger {
  return pino(
    { level, redact: { paths: redactedPaths, censor: '[redacted]' }, base: { service: 'medlake' } },
    destination,
  );
}

export type { Logger };
