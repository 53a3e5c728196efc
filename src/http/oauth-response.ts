import type { Response } from 'express';
import type { Logger } from 'pino';
import { InvalidClientBasicError } from '../oauth/client-auth.js';
import { OAuthError, serverError, temporarilyUnavailable } from '../oauth/errors.js';
import { StoreUnavailableError } from '../store/types.js';

/** Seconds a client should wait after the store refused a write. */
export const STORE_RETRY_AFTER_SECONDS = 5;

/** RFC 6749 §5.1: responses carrying credentials must not be cached. */
export function noStore(res: Response): void {
  res.setHeader('Cache-Control', 'no-store');
  res.setHeader('Pragma', 'no-cache');
}

/** Maps any thrown value to an OAuthError; unexpected errors are logged and become server_error. */
export function toOAuthError(err: unknown, logger: Logger): OAuthError {
  if (err instanceof OAuthError) return err;
  if (err instanceof StoreUnavailableError) {
    return temporarilyUnavailable('The server cannot save data right now; try again shortly', err.reason);
  }
  logger.error({ err }, 'unexpected error');
  return serverError();
}

/** Sends the RFC's error JSON with its status; the private detail goes to the log only. */
export function sendOAuthError(res: Response, err: unknown, logger: Logger): void {
  const error = toOAuthError(err, logger);
  if (error.detail) logger.info({ error: error.error, detail: error.detail }, 'request refused');
  noStore(res);
  if (error instanceof InvalidClientBasicError) res.setHeader('WWW-Authenticate', 'Basic realm="latchkey"');
  if (error.status === 503) res.setHeader('Retry-After', String(STORE_RETRY_AFTER_SECONDS));
  res.status(error.status).json(error.toResponseObject());
}

/**
 * The status of an error the body parser raised because of what the client sent, or
 * undefined for any other error. Most carry a `type` ('entity.too.large', ...); a body that
 * fails to decompress (Content-Encoding: gzip over garbage) carries only the zlib error with
 * a 4xx `status`, and must not become a 500.
 */
export function requestFaultStatus(err: unknown): number | undefined {
  if (typeof err !== 'object' || err === null || err instanceof OAuthError) return undefined;
  const { type, status } = err as { type?: unknown; status?: unknown };
  if (type === 'entity.too.large' || type === 'parameters.too.many') return 413;
  if (typeof type === 'string') return 400;
  if (typeof status === 'number' && status >= 400 && status < 500) return 400;
  return undefined;
}

/**
 * The error handler of every JSON endpoint: body-parser failures become invalid_request
 * (413 for an oversized body), everything else goes through {@link sendOAuthError}.
 */
export function jsonErrorHandler(logger: Logger) {
  return (err: unknown, _req: unknown, res: Response, _next: unknown): void => {
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
