import { pino, type DestinationStream, type Logger } from 'pino';

/**
 * Paths pino censors wherever they appear (two levels deep covers our log objects:
 * `{ req: { headers: { authorization } } }`, `{ body: { client_secret } }`, ...).
 * Request logs themselves carry only method, path and status: no query, body or headers.
 */
const SECRET_KEYS = [
  'authorization',
  'cookie',
  'set-cookie',
  'location',
  'access_token',
  'refresh_token',
  'code',
  'code_verifier',
  'client_secret',
  'token',
  'pin',
  'password',
  'consent',
];

export const REDACT_PATHS = SECRET_KEYS.flatMap((k) => [k, `*.${k}`, `*.*.${k}`, `*.*.*.${k}`]).map((p) =>
  p.includes('-') ? p.replace(/(^|\.)([^.*]+-[^.]+)$/, '$1["$2"]') : p,
);

export function createLogger(level: string, destination?: DestinationStream): Logger {
  const options = {
    level,
    base: { service: 'latchkey' },
    redact: { paths: REDACT_PATHS, censor: '[redacted]' },
  };
  return destination ? pino(options, destination) : pino(options);
}
