import type { Logger } from 'pino';
import type { LoginProviderId, Person } from './person.js';

/**
 * What a sign-in through a provider needs to remember between sending the browser away and
 * its return. JSON-serialisable: the caller keeps it where only this browser can bring it
 * back (a signed HttpOnly cookie) and makes it single-use, so a replayed callback finds none.
 */
export interface LoginTransaction {
  provider: LoginProviderId;
  /** RFC 6749 §10.12: binds the callback to this browser. */
  state: string;
  /** OpenID Connect Core §3.1.2.1: binds the ID token to this sign-in. Absent for GitHub (not OpenID). */
  nonce?: string;
  /** RFC 7636: proves the code is redeemed by whoever asked for it. */
  codeVerifier: string;
}

export interface LoginProvider {
  id: LoginProviderId;
  /** The button's label: OAUTH_OIDC_NAME, or "GitHub". */
  label: string;
  /**
   * The origin of the provider's authorization endpoint, where `start` sends the browser: a
   * page whose form leads there must allow it (CSP form-action applies to the redirect that
   * follows a form post).
   */
  authorizationOrigin(): string;
  /**
   * Where to send the browser, and what to keep until it returns to `callbackUrl`
   * (`<OAUTH_ISSUER_URL>/login/callback/<id>`, registered at the provider).
   * Throws LoginError('provider-unreachable') while the provider cannot be discovered.
   */
  start(callbackUrl: string): Promise<{ url: string; transaction: LoginTransaction }>;
  /**
   * Validates the provider's answer and returns who signed in. `currentUrl` need only carry
   * the callback's query; the redirect_uri sent to the token endpoint is `callbackUrl`, so a
   * proxy in front of Latchkey cannot change it. Checks state, the code with PKCE, and for
   * OpenID the ID token (signature, iss, aud, nonce, expiry). Every failure is a LoginError.
   */
  finish(currentUrl: URL, transaction: LoginTransaction, callbackUrl: string): Promise<Person>;
}

/** What a provider needs from the daemon. */
export interface ProviderDeps {
  logger: Logger;
  /** Limit for each request to the provider; a provider that does not answer in time is unreachable. */
  timeoutMs: number;
}

/** Why a sign-in failed, for the audit log and for choosing the page to show. */
export type LoginFailureReason =
  /** The callback's state is not this browser's transaction: CSRF, a replay, or another tab. */
  | 'state-mismatch'
  /** The person cancelled at the provider (error=access_denied). */
  | 'denied'
  /** The provider did not answer, answered 5xx, or took longer than the timeout. */
  | 'provider-unreachable'
  /** The provider answered with an OAuth error (e.g. invalid_grant for a used or expired code). */
  | 'provider-error'
  /** The provider's answer broke the protocol (wrong iss parameter, malformed response). */
  | 'invalid-response'
  /** The ID token failed validation: signature, issuer, audience, nonce or expiry. */
  | 'invalid-id-token';

/**
 * A failed sign-in: `message` is safe to show the person, `detail` goes only to the log
 * (library error codes and the failing claim's name, never a token, code or secret).
 */
export class LoginError extends Error {
  constructor(
    readonly reason: LoginFailureReason,
    message: string,
    readonly detail?: string,
  ) {
    super(message);
    this.name = 'LoginError';
  }
}
