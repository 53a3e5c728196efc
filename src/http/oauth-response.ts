import type { Request, Response } from 'express';
import type { Logger } from 'pino';
import { InvalidClientBasicError } from '../oauth/client-auth.js';
import { noStore } from '../net/cache-headers.js';
import { OAuthError, STORE_RETRY_AFTER_SECONDS, toOAuthError } from '../oauth/errors.js';

/**
 * The response helpers every route shares: caching headers, the RFC error JSON, and the
 * statuses of errors Express and its body parsers raise.
 */

export { STORE_RETRY_AFTER_SECONDS } from '../oauth/errors.js';

export { noStore } from '../net/cache-headers.js';

/** Sends the RFC's error JSON with its status; the private detail goes to the log only. */
export function sendOAuthError(res: Response, err: unknown, logger: Logger): void {
  const error = toOAuthError(err, logger);
  if (error.detail) logger.info({ error: error.error, detail: error.detail }, 'request refused');
  noStore(res);
  if (error instanceof InvalidClientBasicError) res.setHeader('WWW-Authenticate', 'Basic realm="latchkey"');
  if (error.status === 503) res.setHeader('Retry-After', String(STORE_RETRY_AFTER_SECONDS));
  res.status(error.status).json(error.toResponseObject());
}

/** The HTTP status an error carries (Express and body-parser errors have one), or undefined. */
export function statusOf(err: unknown): number | undefined {
  if (typeof err !== 'object' || err === null || !('status' in err)) return undefined;
  const status = Number((err as { status: unknown }).status);
  return Number.isInteger(status) ? status : undefined;
}

/**
 * The status of an error the body parser raised because of what the client sent, or
 * undefined for any other error. Most carry a `type` ('entity.too.large', ...); a body that
 * fails to decompress (Content-Encoding: gzip over garbage) carries only the zlib error with
 * a 4xx `status`, and must not become a 500.
 */
export function requestFaultStatus(err: unknown): number | undefined {
  if (typeof err !== 'object' || err === null || err instanceof OAuthError) return undefined;
  const { type } = err as { type?: unknown };
  if (type === 'entity.too.large' || type === 'parameters.too.many') return 413;
  if (typeof type === 'string') return 400;
  const status = statusOf(err);
  if (status !== undefined && status >= 400 && status < 500) return 400;
  return undefined;
}

/** The 4xx status of an error the client caused (a body it sent, a bad path), or undefined for a fault of ours. */
export function clientFaultStatus(err: unknown): number | undefined {
  const body = requestFaultStatus(err);
  if (body !== undefined) return body;
  const status = statusOf(err);
  return status !== undefined && status >= 400 && status < 500 ? status : undefined;
}

/**
 * The error handler of every JSON endpoint: body-parser failures become invalid_request
 * (413 for an oversized body), everything else goes through {@link sendOAuthError}.
 */
export function jsonErrorHandler(logger: Logger) {
  return (err: unknown, _req: Request, res: Response, _next: unknown): void => {
    const status = requestFaultStatus(err);
    if (status !== undefined) {
      noStore(res);
      res.status(status).json({
        error: 'invalid_request',
        error_description: status === 413 ? 'The request body is too large' : 'The request body could not be parsed',
      });
      return;
    }
    sendOAuthError(res, err, logger);
  };
}

/** 405 for a JSON endpoint that takes only POST. */
export function methodNotAllowed(req: Request, res: Response): void {
  res.setHeader('Allow', 'POST, OPTIONS');
  res.status(405).json({ error: 'invalid_request', error_description: `${req.method} is not allowed here; use POST` });
}
