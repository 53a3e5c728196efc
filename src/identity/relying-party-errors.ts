import {
  AuthorizationResponseError,
  ClientError,
  ResponseBodyError,
  WWWAuthenticateChallengeError,
} from 'openid-client';
import { LoginError, type LoginFailureReason } from './login-provider.js';

/**
 * Turns whatever openid-client (and its engine oauth4webapi) threw into a LoginError with a
 * reason for the audit log and a sentence for the person. The libraries do all the checking;
 * this only reads their error codes. Details never include the error's `cause` objects,
 * which can hold the token response.
 */

const messages: Record<LoginFailureReason, (label: string) => string> = {
  'state-mismatch': () =>
    'This sign-in was already used, or was started in another browser window. Start again from the app you are connecting.',
  denied: (label) => `The sign-in at ${label} was cancelled, so nothing was connected.`,
  'provider-unreachable': (label) => `${label} cannot be reached right now. Try again in a few minutes.`,
  'provider-error': (label) => `${label} refused to complete the sign-in. Start again from the app you are connecting.`,
  'invalid-response': (label) => `${label} answered in a way Latchkey cannot trust, so the sign-in stopped.`,
  'invalid-id-token': (label) => `${label} sent an identity Latchkey could not verify, so the sign-in stopped.`,
};

export function loginError(reason: LoginFailureReason, label: string, detail?: string): LoginError {
  return new LoginError(reason, messages[reason](label), detail);
}

/** oauth4webapi's codes for a JWT that failed a claim, time or key check; our only JWT is the ID token. */
const ID_TOKEN_CODES = new Set([
  'OAUTH_JWT_CLAIM_COMPARISON_FAILED',
  'OAUTH_JWT_TIMESTAMP_CHECK_FAILED',
  'OAUTH_KEY_SELECTION_FAILED',
]);
const UNREACHABLE_CODES = new Set(['OAUTH_TIMEOUT', 'OAUTH_ABORT']);

const isRecord = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null;

/**
 * Errors are recognised by shape, not instanceof: fetch's errors come from Node's own realm,
 * which is not the module's under a VM (jest), and openid-client then wraps them unrecognised.
 */
const isErrorLike = (v: unknown): v is Record<string, unknown> & { name: string; message: string } =>
  isRecord(v) && typeof v.name === 'string' && typeof v.message === 'string';

/** undici's "fetch failed" (refused, reset, DNS or TLS failure): the code of its cause, else undefined. */
function fetchFailure(err: unknown): string | undefined {
  if (!isErrorLike(err) || err.name !== 'TypeError' || err.cause === undefined) return undefined;
  return isRecord(err.cause) && typeof err.cause.code === 'string' ? err.cause.code : String(err.cause);
}

/**
 * The detail object of a ClientError: oauth4webapi's OperationProcessingError carries it as its
 * own cause; openid-client's discovery issuer check attaches it directly.
 */
function errorDetail(err: ClientError): Record<string, unknown> {
  const inner = err.cause;
  if (isErrorLike(inner)) return isRecord(inner.cause) ? inner.cause : {};
  return isRecord(inner) ? inner : {};
}

function fromClientError(err: ClientError, label: string): LoginError {
  const code = err.code ?? 'unknown';
  const unreachable = fetchFailure(err.cause);
  if (unreachable !== undefined) return loginError('provider-unreachable', label, `fetch failed: ${unreachable}`);
  const innerMessage = isErrorLike(err.cause) ? `: ${err.cause.message}` : '';
  const detail = `${code}${innerMessage}`;
  if (UNREACHABLE_CODES.has(code)) return loginError('provider-unreachable', label, detail);
  if (code === 'OAUTH_RESPONSE_IS_NOT_CONFORM') {
    // Here the cause is the HTTP response itself: a 5xx means the provider is down.
    const status = isRecord(err.cause) && typeof err.cause.status === 'number' ? err.cause.status : 0;
    return loginError(status >= 500 ? 'provider-unreachable' : 'invalid-response', label, `${code}: HTTP ${status}`);
  }
  const info = errorDetail(err);
  if (ID_TOKEN_CODES.has(code)) {
    const claim = typeof info.claim === 'string' ? ` (claim ${info.claim})` : '';
    return loginError('invalid-id-token', label, `${detail}${claim}`);
  }
  if (code === 'OAUTH_INVALID_RESPONSE' || code === 'OAUTH_PARSE_ERROR') {
    // oauth4webapi reports a bad JWS signature and malformed JWT claims with these codes,
    // giving the signature or the claims as detail.
    if ('signature' in info || 'claims' in info) return loginError('invalid-id-token', label, detail);
    // GitHub answers token errors with HTTP 200 and an OAuth error body ("Troubleshooting
    // OAuth App access token request errors"), which oauth4webapi sees as a missing access_token.
    if (isRecord(info.body) && typeof info.body.error === 'string') {
      return loginError('provider-error', label, `token endpoint error ${info.body.error}`);
    }
  }
  if (code === 'OAUTH_JSON_ATTRIBUTE_COMPARISON_FAILED' && info.attribute === 'issuer' && isRecord(info.body)) {
    // OpenID Connect Discovery §4.3: the document's issuer must be the configured one.
    return loginError(
      'invalid-response',
      label,
      `discovery: the provider's issuer is "${String(info.body.issuer)}", not the configured OAUTH_OIDC_ISSUER "${String(info.expected)}"`,
    );
  }
  return loginError('invalid-response', label, detail);
}

export function toLoginError(err: unknown, label: string): LoginError {
  if (err instanceof LoginError) return err;
  if (err instanceof AuthorizationResponseError) {
    // RFC 6749 §4.1.2.1
    return loginError(err.error === 'access_denied' ? 'denied' : 'provider-error', label, `authorization error ${err.error}`);
  }
  if (err instanceof ResponseBodyError) {
    // RFC 6749 §5.2; temporarily_unavailable and 5xx mean the provider is down, not refusing.
    const down = err.status >= 500 || err.error === 'temporarily_unavailable';
    return loginError(down ? 'provider-unreachable' : 'provider-error', label, `HTTP ${err.status} ${err.error}`);
  }
  if (err instanceof WWWAuthenticateChallengeError) {
    return loginError('provider-error', label, `HTTP ${err.status} with a WWW-Authenticate challenge`);
  }
  if (err instanceof ClientError) return fromClientError(err, label);
  const unreachable = fetchFailure(err);
  if (unreachable !== undefined) return loginError('provider-unreachable', label, `fetch failed: ${unreachable}`);
  return loginError('invalid-response', label, isErrorLike(err) ? `${err.name}: ${err.message}` : String(err));
}
