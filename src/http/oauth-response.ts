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
 * The error handler of every JSON endpoint: body-parser failures become invalid_request
 * (413 for an oversized body), everything else goes through {@link sendOAuthError}.
 */
export function jsonErrorHandler(logger: Logger) {
  return (err: unknown, _req: unknown, res: Response, _next: unknown): void => {
    const parserType = typeof err === 'object' && err !== null ? (err as { type?: unknown }).type : undefined;
    if (typeof parserType === 'string') {
      const status = parserType === 'entity.too.large' ? 413 : 400;
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
