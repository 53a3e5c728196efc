import type { Logger } from 'pino';
import { StoreUnavailableError } from '../store/types.js';

/**
 * OAuth errors as values. Each carries the protocol `error` code, the HTTP status the
 * RFC prescribes, a public `error_description`, and an optional private `detail` that only
 * goes to the log (the idea comes from node-oidc-provider: what is safe to show is decided here).
 */
export class OAuthError extends Error {
  constructor(
    readonly error: string,
    readonly description: string,
    readonly status: number = 400,
    readonly detail?: string,
  ) {
    super(`${error}: ${description}`);
    this.name = 'OAuthError';
  }

  toResponseObject(): { error: string; error_description: string } {
    return { error: this.error, error_description: this.description };
  }
}

export const invalidRequest = (description: string, detail?: string): OAuthError =>
  new OAuthError('invalid_request', description, 400, detail);

/** RFC 6749 §5.2: 401 when the client tried to authenticate. MCP clients re-register on it. */
export const invalidClient = (description: string, detail?: string): OAuthError =>
  new OAuthError('invalid_client', description, 401, detail);

/** RFC 6749 §5.2: the grant is bad; MCP clients drop their tokens and re-authorize. */
export const invalidGrant = (description: string, detail?: string): OAuthError =>
  new OAuthError('invalid_grant', description, 400, detail);

export const unauthorizedClient = (description: string): OAuthError =>
  new OAuthError('unauthorized_client', description, 400);

export const unsupportedGrantType = (description: string): OAuthError =>
  new OAuthError('unsupported_grant_type', description, 400);

export const invalidScope = (description: string): OAuthError => new OAuthError('invalid_scope', description, 400);

/** RFC 8707 §2. */
export const invalidTarget = (description: string): OAuthError => new OAuthError('invalid_target', description, 400);

/** RFC 7591 §3.2.2. */
export const invalidClientMetadata = (description: string): OAuthError =>
  new OAuthError('invalid_client_metadata', description, 400);

export const invalidRedirectUri = (description: string): OAuthError =>
  new OAuthError('invalid_redirect_uri', description, 400);

/** Seconds a client should wait after the store could not serve a request (Retry-After). */
export const STORE_RETRY_AFTER_SECONDS = 5;

export const temporarilyUnavailable = (description: string, detail?: string): OAuthError =>
  new OAuthError('temporarily_unavailable', description, 503, detail);

export const serverError = (detail?: string): OAuthError =>
  new OAuthError('server_error', 'The server hit an unexpected condition; try again.', 500, detail);

/**
 * Whether `err` means "the store cannot serve right now; try again shortly" (the database
 * unreachable or restarting, the disk refusing writes): answered 503 with Retry-After, never
 * 500, whether it happened in a read or a write.
 */
export function isUnavailable(err: unknown): boolean {
  return err instanceof StoreUnavailableError || (err instanceof OAuthError && err.status === 503);
}

/** Any thrown value as an OAuthError; the store's refusal is temporarily_unavailable, anything unexpected is logged and becomes server_error. */
export function toOAuthError(err: unknown, logger: Logger): OAuthError {
  if (err instanceof OAuthError) return err;
  if (err instanceof StoreUnavailableError) {
    return temporarilyUnavailable('The server cannot save data right now; try again shortly', err.reason);
  }
  logger.error({ err }, 'unexpected error');
  return serverError();
}
